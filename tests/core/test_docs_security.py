"""docs/security.md runs as printed and prints what it says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm.apps import apps
from dorm.db.connection import reset_connections

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


@pytest.fixture
def clean_app() -> Any:
    yield
    reset_connections()
    dorm.conf.settings._reset()
    apps.clear("docs_security")


def test_security_md_runs_as_printed(
    clean_app: None, doc_tools: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    doc_tools.run_markdown(DOC)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith('the alias \'"n" FROM t; DROP TABLE x;')
    assert "is not allowed" in out[0]
    assert out[1] == "{'total%': 1}"
