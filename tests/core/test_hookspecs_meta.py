"""Every hookspec is typed, documented in docs/hooks.md with its exact signature, and tested."""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest

from dorm import hookspecs

REPO = Path(__file__).resolve().parents[2]
SPECS = list(hookspecs.spec_names())


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hooks_doc", REPO / "tools" / "hooks_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HOOKS_DOC = _load_tool()


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
    for part in ("\nFires: ", "\nThread: ", "\nReturns: ", "\nOn error: "):
        assert part in doc, f"{name}: the docstring must say {part.strip()!r}"


def test_every_spec_has_a_test_named_after_it() -> None:
    sources = "\n".join(p.read_text() for p in (REPO / "tests").rglob("test_*.py"))
    missing = [n for n in SPECS if not re.search(rf"^def test_hook_{n}\(", sources, re.M)]
    assert missing == []


def test_docs_hooks_md_is_generated_from_the_specs() -> None:
    assert (REPO / "docs" / "hooks.md").read_text() == HOOKS_DOC.render(), (
        "docs/hooks.md is stale: run python tools/hooks_doc.py"
    )


def test_every_spec_is_in_docs_hooks_md_with_its_exact_signature() -> None:
    sections = _doc_sections()
    assert sorted(sections) == sorted(SPECS)
    for name in SPECS:
        assert HOOKS_DOC.signature(name) in sections[name].replace("\n    ", " "), name
