"""docs/models.md runs as printed, on SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"


@pytest.fixture
def clean_apps() -> Any:
    yield
    from dorm.apps import apps

    apps.clear("docs_models")


def test_models_md_runs_and_prints_what_it_shows(
    fresh_settings: Any, clean_apps: Any, run_printed_markdown: Any
) -> None:
    assert run_printed_markdown(DOC, "docs_models") == 14
