"""A durable saga for the crash drill, run in subprocesses.

``python sagaapp.py`` configures dorm from the JSON in ``DORM_SAGA_TEST_DB`` and runs the
saga ``drill-checkout``; ``dorm saga resume --import sagaapp`` finds it by name. Every
action and compensation writes one ``Counter`` row, then SIGKILLs its own process when
``SAGA_DRILL_KILL_AT`` names it: inside the transaction, before its commit.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from typing import Any

import dorm
from dorm.contrib.saga import Saga, Step


class Counter(dorm.Model):
    what = dorm.CharField(max_length=40)

    class Meta:
        app_label = "saga_drill"
        db_table = "saga_drill_counter"


def effect(what: str) -> Callable[[dict[str, Any]], None]:
    def run(ctx: dict[str, Any]) -> None:
        Counter.objects.create(what=what)
        ctx.setdefault("done", []).append(what)
        if os.environ.get("SAGA_DRILL_KILL_AT") == what:
            os.kill(os.getpid(), signal.SIGKILL)

    return run


checkout = Saga(
    steps=[
        Step("a", effect("a"), effect("undo-a")),
        Step("b", effect("b"), effect("undo-b")),
        Step("c", effect("c"), effect("undo-c")),
    ],
    name="drill-checkout",
    durable=True,
)

if __name__ == "__main__":
    dorm.configure(DATABASES={"default": json.loads(os.environ["DORM_SAGA_TEST_DB"])})
    result = checkout.run({"order": 1})
    print("ok" if result.ok else "failed", result.run_id)
