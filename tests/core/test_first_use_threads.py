"""The first ORM calls of a process, from many threads at once: lazy imports are safe.

Each of 20 processes starts 8 threads that wait on a barrier, then do the process's first
save(), refresh_from_db() and delete() at the same moment. Before the fix a thread could
read a module from ``sys.modules`` that another thread was still executing
(``AttributeError: partially initialized module 'dorm.models.persistence'``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import dorm

PROCESSES = 20
THREADS = 8

CHILD = r"""
import json, os, sys, threading, time, traceback

start_at = float(sys.argv[1])
import dorm

dorm.configure(DATABASES={"default": json.loads(os.environ["FIRST_USE_DB"])})


class Hit(dorm.Model):
    who = dorm.CharField(max_length=40)
    n = dorm.IntegerField(default=0)

    class Meta:
        app_label = "t_first_use"
        db_table = "t_first_use_hit"


barrier = threading.Barrier(THREADS_N)
errors = []


def work(i):
    try:
        barrier.wait()
        hit = Hit(who=f"{os.getpid()}-{i}", n=i)
        hit.save()
        hit.refresh_from_db()
        assert hit.n == i
        gone = Hit(who=f"{os.getpid()}-{i}-tmp")
        gone.save()
        gone.delete()
    except BaseException:
        errors.append(traceback.format_exc())


threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS_N)]
delay = start_at - time.time()
if delay > 0:
    time.sleep(delay)
for t in threads:
    t.start()
for t in threads:
    t.join()
if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
""".replace("THREADS_N", str(THREADS))


class Hit(dorm.Model):
    who = dorm.CharField(max_length=40)
    n = dorm.IntegerField(default=0)

    class Meta:
        app_label = "t_first_use"
        db_table = "t_first_use_hit"


MODELS = [Hit]
pytestmark = pytest.mark.usefixtures("clean_tables")


def test_first_saves_from_many_threads_in_many_processes(db: Any, tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    settings = dict(db.settings)
    if db.vendor == "sqlite":
        settings["OPTIONS"] = {**settings.get("OPTIONS", {}), "timeout": 60}
    env = {**os.environ, "FIRST_USE_DB": json.dumps(settings)}
    start_at = time.time() + 4.0  # every process imported dorm by then
    children = [
        subprocess.Popen(
            [sys.executable, str(script), str(start_at)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    failures = []
    for child in children:
        out, err = child.communicate(timeout=120)
        if child.returncode != 0:
            failures.append(err)
    assert failures == []
    assert Hit.objects.count() == PROCESSES * THREADS
    assert sorted(Hit.objects.values_list("n", flat=True)) == sorted(
        list(range(THREADS)) * PROCESSES
    )
    assert not Hit.objects.filter(who__endswith="-tmp").exists()
