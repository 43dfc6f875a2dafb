"""Sagas: steps that commit one by one, compensated in reverse order when one fails.

Usage::

    from dorm.contrib.saga import Saga, Step

    def reserve(ctx): ...          # each action runs in its own atomic() and commits
    def release(ctx): ...          # its compensation, run if a later step fails

    saga = Saga(steps=[
        Step("reserve_inventory", reserve, release),
        Step("charge_card", charge, refund),
        Step("ship", ship, cancel_shipping),
    ])
    run = saga.run({"order_id": 42})
    if not run.ok:
        print(run.failure[0], run.compensated, run.compensation_errors)

``Saga(..., name="checkout", durable=True)`` records every run in the table
``dorm_saga_run`` with each step; ``dorm saga list`` and ``dorm saga resume`` finish or
compensate the runs of a process that died. The distribution also ships
``dorm.contrib.two_phase``, ``dorm.contrib.inbox`` and ``dorm.contrib.concurrency``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dorm.plugins import lazy_exports

if TYPE_CHECKING:
    from dorm.contrib.saga.exceptions import (
        SagaError,
        SagaOwnershipError,
        UnknownSagaError,
    )
    from dorm.contrib.saga.runner import (
        Saga,
        SagaRun,
        Step,
        registered_saga,
    )

# Loaded on first use: the plugin's entry point imports this package, and a plugin must
# add nothing to the cost of ``import dorm`` (or of defining a model) until it is used.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "SagaError": "dorm.contrib.saga.exceptions",
        "SagaOwnershipError": "dorm.contrib.saga.exceptions",
        "UnknownSagaError": "dorm.contrib.saga.exceptions",
        "Saga": "dorm.contrib.saga.runner",
        "SagaRun": "dorm.contrib.saga.runner",
        "Step": "dorm.contrib.saga.runner",
        "registered_saga": "dorm.contrib.saga.runner",
    },
)


__version__ = "1.0.0"

__all__ = [
    "Saga",
    "SagaError",
    "SagaOwnershipError",
    "SagaRun",
    "Step",
    "UnknownSagaError",
    "__version__",
    "registered_saga",
]
