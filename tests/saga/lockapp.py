"""Processes that increment one counter under ``named_lock``, for the mutual-exclusion drill.

``python lockapp.py ROUNDS`` configures dorm from the JSON in ``DORM_LOCK_TEST_DB``, waits
until ``DORM_LOCK_START_AT`` (epoch seconds) and then ROUNDS times reads the counter,
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
    time.sleep(max(0.0, float(os.environ["DORM_LOCK_START_AT"]) - time.time()))
    unlocked = os.environ.get("DORM_LOCK_OFF") == "1"
    for _ in range(rounds):
        with contextlib.nullcontext() if unlocked else named_lock("drill-counter"):
            bump()
