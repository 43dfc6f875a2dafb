"""Durable sagas under SIGKILL: ``dorm saga resume`` runs each step and each
compensation at most once per run, counted in a table."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter as Tally
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from sagaapp import Counter  # noqa: E402

from dorm.contrib.saga.store import SagaRunRecord  # noqa: E402

MODELS = [Counter, SagaRunRecord]

pytestmark = pytest.mark.usefixtures("clean_tables")


def _env(db: Any, kill_at: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        "DORM_SAGA_TEST_DB": json.dumps(db.settings),
        "DORM_SETTINGS": "drillsettings",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("SAGA_DRILL_KILL_AT", None)
    if kill_at:
        env["SAGA_DRILL_KILL_AT"] = kill_at
    return env


def run_saga(db: Any, kill_at: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HERE / "sagaapp.py")],
        env=_env(db, kill_at),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=HERE,
    )


def dorm_cli(db: Any, *args: str, kill_at: str | None = None) -> subprocess.CompletedProcess[str]:
    dorm = Path(sys.executable).parent / "dorm"
    return subprocess.run(
        [str(dorm), *args],
        env=_env(db, kill_at),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=HERE,
    )


def tally() -> Tally[str]:
    return Tally(Counter.objects.values_list("what", flat=True))


def the_run() -> SagaRunRecord:
    return SagaRunRecord.objects.get(name="drill-checkout")


def test_sigkill_between_steps_then_resume_compensate_runs_each_once(db: Any) -> None:
    killed = run_saga(db, kill_at="c")  # a and b committed; c dies before its commit
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    record = the_run()
    assert record.state == "running" and record.completed == ["a", "b"]
    assert tally() == Tally({"a": 1, "b": 1})

    listed = dorm_cli(db, "saga", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"{record.run_id}  drill-checkout  running  completed=['a', 'b']" in listed.stdout

    # The compensating process dies too, inside the compensation of b.
    died = dorm_cli(
        db,
        "saga",
        "resume",
        "--compensate",
        record.run_id,
        "--import",
        "sagaapp",
        kill_at="undo-b",
    )
    assert died.returncode == -signal.SIGKILL, died.stdout + died.stderr
    assert tally() == Tally({"a": 1, "b": 1})
    assert the_run().state == "compensating" and the_run().compensated == []

    done = dorm_cli(db, "saga", "resume", "--compensate", record.run_id, "--import", "sagaapp")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "drill-checkout: compensated" in done.stdout
    assert tally() == Tally({"a": 1, "b": 1, "undo-b": 1, "undo-a": 1})
    assert the_run().state == "compensated" and the_run().compensated == ["b", "a"]

    # Again: the run is finished, nothing runs twice.
    again = dorm_cli(db, "saga", "resume", "--compensate", record.run_id, "--import", "sagaapp")
    assert again.returncode == 1 and "no unfinished run" in again.stderr
    assert tally() == Tally({"a": 1, "b": 1, "undo-b": 1, "undo-a": 1})


def test_sigkill_then_resume_finishes_the_steps_once(db: Any) -> None:
    assert run_saga(db, kill_at="b").returncode == -signal.SIGKILL
    record = the_run()
    assert record.completed == ["a"] and tally() == Tally({"a": 1})
    # Without a run id only runs idle for --older-than are taken: this one is too fresh.
    fresh = dorm_cli(db, "saga", "resume", "--import", "sagaapp")
    assert fresh.returncode == 0 and "no saga runs to resume" in fresh.stdout
    resumed = dorm_cli(db, "saga", "resume", "--older-than", "0s", "--import", "sagaapp")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "drill-checkout: done" in resumed.stdout
    assert tally() == Tally({"a": 1, "b": 1, "c": 1})
    assert the_run().state == "done" and the_run().ctx == {"order": 1, "done": ["a", "b", "c"]}


def test_resume_without_the_saga_module_says_what_to_import(db: Any) -> None:
    assert run_saga(db, kill_at="b").returncode == -signal.SIGKILL
    record = the_run()
    failed = dorm_cli(db, "saga", "resume", record.run_id)
    assert failed.returncode != 0
    assert "no durable saga named 'drill-checkout'" in failed.stderr
    assert "--import" in failed.stderr
    assert tally() == Tally({"a": 1})
