"""docs/queries.md runs as printed: its python blocks are executed in order on SQLite."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm.apps import apps
from dorm.db.connection import reset_connections

DOC = Path(__file__).resolve().parents[2] / "docs" / "queries.md"


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    yield tmp_path
    reset_connections()
    dorm.conf.settings._reset()
    for label in list(apps.all_models):
        if label.startswith("docs_"):
            apps.clear(label)


def test_queries_md_runs_as_printed(in_tmp: Path, doc_tools: Any) -> None:
    namespace = doc_tools.run_markdown(DOC)
    assert namespace["dorm"].conf.settings.DATABASES["default"]["NAME"] == "queries.db"
