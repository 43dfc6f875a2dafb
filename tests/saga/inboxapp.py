"""An inbox consumer for the race drill, run in subprocesses.

``python inboxapp.py THREADS COUNT`` configures dorm from the JSON in
``DORM_INBOX_TEST_DB`` and delivers the message ids 0..COUNT-1 from THREADS threads at
once (all processes start together, see ``DORM_INBOX_BARRIER``), each in its own shuffled order, to
the ``@idempotent`` handler ``handle``; every run of the handler writes one ``Effect`` row
in its transaction.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time

import dorm
from dorm.contrib.inbox import InboxRecord, idempotent


class RaceInbox(InboxRecord):
    class Meta:
        app_label = "inbox_race"
        db_table = "inbox_race"


class Effect(dorm.Model):
    message_id = dorm.CharField(max_length=20)
    pid = dorm.IntegerField()

    class Meta:
        app_label = "inbox_race"
        db_table = "inbox_race_effect"


@idempotent(RaceInbox, handler_name="race")
def handle(message_id: str, payload: dict[str, int]) -> str:
    Effect.objects.create(message_id=message_id, pid=os.getpid())
    return message_id


def deliver(count: int, seed: int, errors: list[BaseException]) -> None:
    ids = [f"m{i}" for i in range(count)]
    random.Random(seed).shuffle(ids)
    try:
        for message_id in ids:
            handle(message_id, {"n": 1})
    except BaseException as exc:  # reported by the parent through the exit code
        errors.append(exc)


if __name__ == "__main__":
    threads, count = int(sys.argv[1]), int(sys.argv[2])
    dorm.configure(DATABASES={"default": json.loads(os.environ["DORM_INBOX_TEST_DB"])})
    # Every process starts delivering at the same moment: each marks itself ready in
    # DORM_INBOX_BARRIER (a folder) and waits for DORM_INBOX_PROCS marks.
    handle("warm-up", {"n": 0})  # the connection and the plan cache are ready
    barrier, procs = os.environ["DORM_INBOX_BARRIER"], int(os.environ["DORM_INBOX_PROCS"])
    open(os.path.join(barrier, str(os.getpid())), "w").close()
    deadline = time.time() + 120
    while len(os.listdir(barrier)) < procs and time.time() < deadline:
        time.sleep(0.005)
    errors: list[BaseException] = []
    workers = [
        threading.Thread(target=deliver, args=(count, os.getpid() * 100 + n, errors))
        for n in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        print(repr(errors[0]), file=sys.stderr)
        raise SystemExit(1)
