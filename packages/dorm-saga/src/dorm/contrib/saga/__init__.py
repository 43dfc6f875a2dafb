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

from dorm.contrib.saga.exceptions import SagaError, SagaOwnershipError, UnknownSagaError
from dorm.contrib.saga.runner import Saga, SagaRun, Step, registered_saga

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
