"""Processes that increment one counter under ``named_lock``, for the mutual-exclusion drill.

``python lockapp.py ROUNDS`` configures dorm from the JSON in ``DORM_LOCK_TEST_DB``, waits
until every process is ready (a file each in ``DORM_LOCK_BARRIER``, ``DORM_LOCK_PARTIES`` of
them: on a loaded machine start-up alone can outlast any fixed delay, and a process that
starts after the others have finished overlaps nothing) and then ROUNDS times reads the counter,
sleeps 2 ms and writes it back plus one, inside ``named_lock("drill-counter")``, or
without the lock when ``DORM_LOCK_OFF=1`` (the control: updates get lost).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time

import dorm
from dorm.contrib.concurrency import named_lock


class LockCounter(dorm.Model):
    value = dorm.IntegerField(default=0)

    class Meta:
        app_label = "lock_drill"
        db_table = "lock_drill_counter"


def bump() -> None:
    counter = LockCounter.objects.get(pk=1)
    time.sleep(0.002)
    LockCounter.objects.filter(pk=1).update(value=counter.value + 1)


if __name__ == "__main__":
    rounds = int(sys.argv[1])
    dorm.configure(DATABASES={"default": json.loads(os.environ["DORM_LOCK_TEST_DB"])})
    barrier, parties = os.environ["DORM_LOCK_BARRIER"], int(os.environ["DORM_LOCK_PARTIES"])
    with open(os.path.join(barrier, str(os.getpid())), "w"):
        pass
    deadline = time.monotonic() + 60
    while len(os.listdir(barrier)) < parties and time.monotonic() < deadline:
        time.sleep(0.001)
    unlocked = os.environ.get("DORM_LOCK_OFF") == "1"
    for _ in range(rounds):
        with contextlib.nullcontext() if unlocked else named_lock("drill-counter"):
            bump()
