"""docs/tasks.md runs as printed, on SQLite."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "tasks.md"
_FENCE = re.compile(r"^```(python)?\n(.*?)^```$", re.M | re.S)


def test_tasks_md_runs_and_prints_what_it_shows(fresh_settings: Any) -> None:
    namespace: dict[str, Any] = {"__name__": "docs_tasks"}
    pending: str | None = None
    checked = 0
    for lang, code in _FENCE.findall(DOC.read_text()):
        if lang == "python":
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(code, str(DOC), "exec"), namespace)
            pending = printed.getvalue() or None
        elif pending is not None:
            assert pending == code
            checked += 1
            pending = None
    assert checked == 5
