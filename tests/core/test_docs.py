"""The documentation's worked plugin example is the plugin the à la carte tests run."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "tests" / "fixtures" / "dorm-hello"


def _file_blocks(markdown: str) -> dict[str, str]:
    blocks = re.findall(r"^```\w*\n# file: (\S+)\n(.*?)^```$", markdown, flags=re.M | re.S)
    return dict(blocks)


def test_plugins_md_shows_the_tested_dorm_hello_files_verbatim() -> None:
    blocks = _file_blocks((REPO / "docs" / "plugins.md").read_text())
    assert sorted(blocks) == [
        "pyproject.toml",
        "src/dorm/contrib/hello/__init__.py",
        "src/dorm/contrib/hello/plugin.py",
    ]
    for rel, text in blocks.items():
        assert (HELLO / rel).read_text() == text, f"docs/plugins.md is out of date for {rel}"
