"""Fixtures for the plugin host tests: a fresh plugin manager and fake installed distributions."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dorm import plugins

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Forget the process-wide plugin manager; the next use loads the entry points again."""
    monkeypatch.setattr(plugins, "_pm", None)
    monkeypatch.setattr(plugins, "_infos", {})
    monkeypatch.setattr(plugins, "_extensions", None)
    yield


FakeDist = Callable[..., str]


@pytest.fixture
def fake_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDist:
    """Install a fake distribution with a ``dorm`` entry point by writing its dist-info.

    ``fake_dist("dorm-x", "1.2.0", "x", source)`` writes ``source`` as a uniquely named
    module, declares ``x = <module>`` in the ``dorm`` group and returns the module name.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def make(dist: str, version: str, ep_name: str, source: str) -> str:
        module = f"fakeplugin_{uuid.uuid4().hex[:10]}"
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[dorm]\n{ep_name} = {module}\n")
        return module

    return make


def build_wheel(package_dir: Path, out_dir: Path, editable: bool = False) -> Path:
    """Build a wheel (or a PEP 660 editable wheel) of ``package_dir`` offline with hatchling."""
    out_dir.mkdir(parents=True, exist_ok=True)
    hook = "build_editable" if editable else "build_wheel"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, hatchling.build as b; print(b.{hook}(sys.argv[1]))",
            str(out_dir),
        ],
        cwd=package_dir,
        capture_output=True,
        text=True,
        check=True,
    )
    return out_dir / result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def wheel_builder() -> Callable[..., Path]:
    """``build_wheel(package_dir, out_dir, editable=False)`` for tests that build their own."""
    return build_wheel


@pytest.fixture(scope="session")
def core_packages() -> list[Path]:
    """Every distribution directory under packages/."""
    return sorted(p.parent for p in (REPO / "packages").glob("*/pyproject.toml"))


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory, core_packages: list[Path]) -> dict[str, Path]:
    """A wheel of every distribution under packages/ and of the tests/fixtures plugin."""
    out = tmp_path_factory.mktemp("wheels")
    dirs = [*core_packages, REPO / "tests" / "fixtures" / "dorm-hello"]
    return {d.name: build_wheel(d, out) for d in dirs}


NO_RUN = "<!-- no-run -->"
_FENCE = re.compile(r"^( *)```python\n(.*?)^\1```$", re.M | re.S)


def python_blocks(markdown: str) -> list[tuple[int, str]]:
    """Return ``(line number, code)`` for each fenced python block not marked no-run."""
    blocks = []
    for match in _FENCE.finditer(markdown):
        before = markdown[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        if before.strip() == NO_RUN:
            continue
        indent = len(match.group(1))
        code = "".join(line[indent:] for line in match.group(2).splitlines(keepends=True))
        blocks.append((markdown.count("\n", 0, match.start(2)) + 1, code))
    return blocks


def run_markdown(doc: Path) -> dict[str, Any]:
    """Exec the doc's python blocks in order in one namespace; a failure names the line."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for line, code in python_blocks(doc.read_text()):
        # Padding keeps line numbers, so a traceback quotes the doc's own line.
        compiled = compile("\n" * (line - 1) + code, str(doc), "exec", dont_inherit=True)
        try:
            exec(compiled, namespace)
        except Exception as exc:
            raise AssertionError(f"{doc.name} block at line {line} failed: {exc!r}") from exc
    return namespace


@pytest.fixture
def doc_tools() -> Any:
    """``doc_tools.python_blocks(text)`` and ``doc_tools.run_markdown(path)`` for doc tests."""
    import types

    return types.SimpleNamespace(python_blocks=python_blocks, run_markdown=run_markdown)
