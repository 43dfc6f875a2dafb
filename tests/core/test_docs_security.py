"""docs/security.md runs as printed and prints what it says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm.apps import apps
from dorm.db.connection import reset_connections

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
# The page's second half documents the dorm-security distribution (tests/security/test_docs.py).
PLUGIN_PART = "\n# dorm-security"


@pytest.fixture
def clean_app() -> Any:
    yield
    reset_connections()
    dorm.conf.settings._reset()
    apps.clear("docs_security")


def test_security_md_runs_as_printed(
    clean_app: None, doc_tools: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    core_part = tmp_path / DOC.name
    core_part.write_text(DOC.read_text().split(PLUGIN_PART, 1)[0])
    doc_tools.run_markdown(core_part)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith('the alias \'"n" FROM t; DROP TABLE x;')
    assert "is not allowed" in out[0]
    assert out[1] == "{'total%': 1}"
