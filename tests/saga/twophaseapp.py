"""A two-phase commit run in a subprocess by the crash drill.

``python twophaseapp.py MODE`` configures the aliases ``primary`` and ``warehouse`` from
the JSON in ``DORM_2PC_TEST_DBS``, writes one order and one stock row in a
``two_phase_commit`` and SIGKILLs itself at the point ``MODE`` names:
``after-decision`` (both prepared, the commit decided, no COMMIT PREPARED yet) or
``before-decision`` (both prepared, nothing decided).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

import dorm
from dorm.contrib.two_phase import coordinator, two_phase_commit


def die(*_args: Any, **_kwargs: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    mode = sys.argv[1]
    dorm.configure(DATABASES=json.loads(os.environ["DORM_2PC_TEST_DBS"]))
    if mode == "after-decision":
        coordinator._finish_prepared = die  # type: ignore[assignment]
    elif mode == "before-decision":
        original = coordinator._PreparingAtomic.__exit__

        def exit_then_die(self: Any, *args: Any) -> None:
            original(self, *args)
            if self.gid.endswith("_1"):  # the last alias is prepared
                die()

        coordinator._PreparingAtomic.__exit__ = exit_then_die  # type: ignore[method-assign]
    with two_phase_commit(["primary", "warehouse"]) as txn:
        txn.execute("primary", "INSERT INTO orders (sku) VALUES (%s)", [mode])
        txn.execute("warehouse", "UPDATE stock SET qty = qty - 1 WHERE sku = %s", ["A-1"])
    print("committed")
