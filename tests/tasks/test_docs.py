"""docs/tasks.md runs as printed, on SQLite."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "tasks.md"
_FENCE = re.compile(r"^```(python)?\n(.*?)^```$", re.M | re.S)


def test_tasks_md_runs_and_prints_what_it_shows(
    fresh_settings: Any, run_printed_markdown: Any
) -> None:
    assert run_printed_markdown(DOC, "docs_tasks") == 5
