"""docs/observability.md, the README example and the release note's snippets run as printed."""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "observability.md"
README = REPO / "packages" / "dorm-observability" / "README.md"
_FENCE = re.compile(r"^```(python)?\n(.*?)^```$", re.M | re.S)


@pytest.fixture
def clean_apps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)  # a default plan_drift.json must not land in the repository
    yield
    from dorm.apps import apps

    for label in list(apps.all_models):
        if label in ("docs_observability", "readme", "release_note"):
            apps.clear(label)
    logging.getLogger("dorm.contrib.slow_tx").handlers.clear()


def test_observability_md_runs_and_prints_what_it_shows(
    fresh_settings: Any, clean_apps: Any, run_printed_markdown: Any
) -> None:
    assert run_printed_markdown(DOC, "docs_observability") == 8


def test_readme_example_runs(fresh_settings: Any, clean_apps: Any) -> None:
    (code,) = [c for lang, c in _FENCE.findall(README.read_text()) if lang == "python"]
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})


def test_release_note_slow_tx_snippet_runs_as_written(
    fresh_settings: Any, clean_apps: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """whats-new-4.3, "Tier 14 — slow-transaction detector", then a block over 500 ms."""
    import dorm
    from dorm import transaction

    dorm.configure(
        DATABASES={"default": {"ENGINE": "sqlite", "NAME": tempfile.mkdtemp() + "/n.db"}}
    )
    namespace: dict[str, Any] = {"__name__": "release_note"}
    exec(
        "from dorm.contrib import slow_tx\n"
        "\n"
        "slow_tx.install(threshold_ms=500)  # at process start\n",
        namespace,
    )
    import time

    caplog.set_level(logging.WARNING, logger="dorm.contrib.slow_tx")
    with transaction.atomic():
        time.sleep(0.52)
    (record,) = [r for r in caplog.records if r.name == "dorm.contrib.slow_tx"]
    assert record.levelno == logging.WARNING and "(threshold 500 ms)" in record.getMessage()
