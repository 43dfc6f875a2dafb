"""Every hookspec is typed, documented in docs/hooks.md with its exact signature, and tested."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from dorm import hookspecs

REPO = Path(__file__).resolve().parents[2]
SPECS = list(hookspecs.spec_names())


def render_signature(name: str) -> str:
    """``def name(arg: type, ...) -> type`` with the annotations as written in the spec."""
    sig = inspect.signature(getattr(hookspecs, name))
    args = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"def {name}({args}) -> {sig.return_annotation}"


def _doc_sections() -> dict[str, str]:
    text = (REPO / "docs" / "hooks.md").read_text()
    parts = re.split(r"^### `(dorm_\w+)`\s*$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_spec_list_is_complete_and_named_by_the_rules() -> None:
    assert len(SPECS) == len(set(SPECS)) >= 20
    for name in SPECS:
        assert re.fullmatch(r"dorm_[a-z0-9_]+", name)
    assert hookspecs.OBSERVER_HOOKS <= set(SPECS)


@pytest.mark.parametrize("name", SPECS)
def test_spec_is_fully_typed_and_has_a_docstring(name: str) -> None:
    fn = getattr(hookspecs, name)
    sig = inspect.signature(fn)
    assert sig.return_annotation is not inspect.Signature.empty, name
    for param in sig.parameters.values():
        assert param.annotation is not inspect.Parameter.empty, f"{name}({param.name})"
    doc = inspect.getdoc(fn) or ""
    assert "Fires" in doc or "Called" in doc, f"{name}: say when it fires"


def test_every_spec_has_a_test_named_after_it() -> None:
    sources = "\n".join(p.read_text() for p in (REPO / "tests").rglob("test_*.py"))
    missing = [n for n in SPECS if not re.search(rf"^def test_hook_{n}\(", sources, re.M)]
    assert missing == []


def test_every_spec_is_in_docs_hooks_md_with_its_exact_signature() -> None:
    sections = _doc_sections()
    assert sorted(sections) == sorted(SPECS)
    for name in SPECS:
        assert render_signature(name) in sections[name].replace("\n    ", " "), name
