"""SIGKILL in the middle of ``anonymize_model``: every batch is all or nothing, and the
masked rows are exactly the batches before the kill (a pk prefix), so a run resumed with
``start_after`` finishes the table with no row lost or masked twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

import dorm
from dorm.contrib.anonymizer import anonymize_model
from dorm.db.connection import get_connection


class Patient(dorm.Model):
    name = dorm.CharField(max_length=40)
    notes = dorm.CharField(max_length=60)

    class Meta:
        app_label = "sec_kill"


MODELS = [Patient]
pytestmark = pytest.mark.usefixtures("clean_tables")

ROWS, BATCH = 300, 10

WORKER = """
import json, sys, time
import dorm
from dorm.contrib.anonymizer import anonymize_model

class Patient(dorm.Model):
    name = dorm.CharField(max_length=40)
    notes = dorm.CharField(max_length=60)
    class Meta:
        app_label = "sec_kill"

settings, batch = json.loads(sys.argv[1])
dorm.configure(DATABASES={"default": settings})

def slow(value):
    time.sleep(0.001)
    return "masked:" + value

anonymize_model(Patient, {"name": slow, "notes": slow}, batch_size=batch)
"""


def _masked_count() -> int:
    conn = get_connection()
    qn = conn.ops.quote_name
    table, column, ph = qn(Patient._meta.db_table), qn("name"), conn.ops.placeholder
    row = conn.fetchone(f"SELECT COUNT(*) FROM {table} WHERE {column} LIKE {ph}", ["masked:%"])
    assert row is not None
    return int(row[0])


def test_sigkill_leaves_whole_batches_and_a_resumable_prefix(db: Any) -> None:
    Patient.objects.bulk_create(
        [Patient(name=f"patient {i}", notes=f"diagnosis {i}") for i in range(ROWS)]
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, json.dumps([db.settings, BATCH])],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while _masked_count() < 5 * BATCH:
            assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.01)
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.wait(timeout=30)
        if worker.stderr:
            worker.stderr.close()
    assert worker.returncode == -signal.SIGKILL

    rows = list(Patient.objects.order_by("pk").values_list("pk", "name", "notes"))
    masked = [r for r in rows if r[1].startswith("masked:")]
    done = len(masked)
    assert 5 * BATCH <= done < ROWS, "killed too late to test anything"
    assert done % BATCH == 0  # whole batches only: the one in flight was rolled back
    assert rows[:done] == masked  # a prefix in pk order: keyset batches
    for _pk, name, notes in rows[:done]:  # both columns of a row, written together
        assert notes.startswith("masked:diagnosis") and name.startswith("masked:patient")
    assert all(not r[1].startswith("masked:") and r[2].startswith("diagnosis") for r in rows[done:])

    # Resume after the last masked row: the rest is masked once, nothing twice.
    left = anonymize_model(
        Patient,
        {"name": lambda v: "masked:" + v, "notes": lambda v: "masked:" + v},
        batch_size=BATCH,
        start_after=masked[-1][0],
    )
    assert left == ROWS - done
    final = list(Patient.objects.order_by("pk").values_list("name", "notes"))
    assert final == [(f"masked:patient {i}", f"masked:diagnosis {i}") for i in range(ROWS)]
