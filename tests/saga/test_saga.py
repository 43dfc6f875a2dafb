"""Sagas: each step commits on its own; compensations run in reverse, each once."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import dorm
from dorm.cli import main
from dorm.contrib.saga import Saga, SagaOwnershipError, Step, UnknownSagaError
from dorm.contrib.saga.store import SagaRunRecord
from dorm.transaction import atomic


class Ledger(dorm.Model):
    """What the steps and compensations did, one row each."""

    entry = dorm.CharField(max_length=40)

    class Meta:
        app_label = "saga_tests"


MODELS = [Ledger, SagaRunRecord]

pytestmark = pytest.mark.usefixtures("clean_tables")


def entries() -> list[str]:
    return list(Ledger.objects.order_by("pk").values_list("entry", flat=True))


def write(entry: str) -> Any:
    def action(ctx: dict[str, Any]) -> None:
        Ledger.objects.create(entry=entry)
        ctx.setdefault("log", []).append(entry)

    action.__name__ = entry
    return action


def fail(message: str) -> Any:
    def action(ctx: dict[str, Any]) -> None:
        Ledger.objects.create(entry="half-done")  # rolled back with the step
        raise RuntimeError(message)

    return action


def order_saga(**kwargs: Any) -> Saga:
    return Saga(
        steps=[
            Step("reserve_inventory", write("reserve"), write("release")),
            Step("charge_card", write("charge"), write("refund")),
            Step("ship", write("ship"), write("cancel_shipping")),
        ],
        **kwargs,
    )


def test_a_clean_run_commits_every_step(db: Any) -> None:
    run = order_saga().run({"order_id": 42})
    assert run.ok and run.failure is None
    assert run.completed == ["reserve_inventory", "charge_card", "ship"]
    assert run.compensated == [] and run.compensation_errors == []
    assert run.ctx["order_id"] == 42 and run.ctx["log"] == ["reserve", "charge", "ship"]
    assert db.count_rows(Ledger._meta.db_table) == 3  # committed: another connection sees them


def test_the_release_note_snippet(db: Any, caplog: pytest.LogCaptureFixture) -> None:
    reserve, release = write("reserve"), write("release")
    charge, refund = write("charge"), write("refund")
    ship, cancel_shipping = fail("no courier"), write("cancel_shipping")
    log = logging.getLogger("test")

    saga = Saga(
        steps=[
            Step("reserve_inventory", reserve, release),
            Step("charge_card", charge, refund),
            Step("ship", ship, cancel_shipping),
        ]
    )
    run = saga.run({"order_id": 42})
    if not run.ok:
        log.error("saga failed at %s, compensated %s", run.failure[0], run.compensated)
    assert "saga failed at ship, compensated ['charge_card', 'reserve_inventory']" in caplog.text
    assert isinstance(run.failure[1], RuntimeError) and str(run.failure[1]) == "no courier"
    assert entries() == ["reserve", "charge", "refund", "release"]


def test_a_failing_compensation_is_recorded_logged_and_the_rest_still_run(
    db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_refund(ctx: dict[str, Any]) -> None:
        Ledger.objects.create(entry="refund-partial")  # rolled back with its transaction
        raise ValueError("gateway down")

    saga = Saga(
        steps=[
            Step("reserve", write("reserve"), write("release")),
            Step("charge", write("charge"), broken_refund),
            Step("ship", fail("no courier")),
        ]
    )
    with caplog.at_level(logging.ERROR, logger="dorm.contrib.saga"):
        run = saga.run()
    assert not run.ok and run.failure is not None and run.failure[0] == "ship"
    assert run.compensated == ["reserve"]
    assert [(n, str(e)) for n, e in run.compensation_errors] == [("charge", "gateway down")]
    assert entries() == ["reserve", "charge", "release"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "'charge'" in errors[0].getMessage()
    assert errors[0].name == "dorm.contrib.saga" and errors[0].exc_info is not None


def test_inside_an_outer_atomic_one_warning(db: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dorm.contrib.saga"):
        with atomic():
            run = order_saga(name="nested").run()
        warnings = [r for r in caplog.records if r.name == "dorm.contrib.saga"]
    assert run.ok
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "outer atomic()" in warnings[0].getMessage()
    assert "lose their durability" in warnings[0].getMessage()
    caplog.clear()
    order_saga().run()
    assert not [r for r in caplog.records if r.name == "dorm.contrib.saga"]


def test_construction_errors() -> None:
    with pytest.raises(ValueError, match="duplicate step name 'a'"):
        Saga(steps=[Step("a", write("x")), Step("a", write("y"))])
    with pytest.raises(ValueError, match="at least one Step"):
        Saga(steps=[])
    with pytest.raises(ValueError, match="needs a name"):
        Saga(steps=[Step("a", write("x"))], durable=True)
    with pytest.raises(TypeError, match="action must be callable"):
        Step("a", "not callable")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty string"):
        Step("", write("x"))


def test_arun_awaits_async_steps_and_runs_sync_ones_in_a_thread(db: Any) -> None:
    async def areserve(ctx: dict[str, Any]) -> None:
        await Ledger.objects.acreate(entry="reserve")

    async def arelease(ctx: dict[str, Any]) -> None:
        await Ledger.objects.acreate(entry="release")

    async def afail(ctx: dict[str, Any]) -> None:
        await Ledger.objects.acreate(entry="half-done")
        raise RuntimeError("declined")

    saga = Saga(
        steps=[
            Step("reserve", areserve, arelease),
            Step("charge", write("charge"), write("refund")),  # sync: in a thread
            Step("pay", afail),
        ]
    )
    run = asyncio.run(saga.arun({"order": 1}))
    assert not run.ok and run.failure is not None and run.failure[0] == "pay"
    assert run.completed == ["reserve", "charge"] and run.compensated == ["charge", "reserve"]
    assert entries() == ["reserve", "charge", "refund", "release"]
    ok = asyncio.run(Saga(steps=[Step("reserve", areserve)]).arun())
    assert ok.ok and entries()[-1] == "reserve"


def test_durable_run_records_progress_with_each_step(db: Any) -> None:
    saga = order_saga(name="checkout", durable=True)
    run = saga.run({"order_id": 7})
    assert run.ok and run.run_id is not None
    record = SagaRunRecord.objects.get(run_id=run.run_id)
    assert record.state == "done" and record.name == "checkout"
    assert record.completed == ["reserve_inventory", "charge_card", "ship"]
    assert record.ctx == {"order_id": 7, "log": ["reserve", "charge", "ship"]}

    failing = Saga(
        steps=[Step("a", write("a"), write("undo-a")), Step("b", fail("boom"))],
        name="failing",
        durable=True,
    )
    bad = failing.run()
    record = SagaRunRecord.objects.get(run_id=bad.run_id)
    assert record.state == "compensated"
    assert record.completed == ["a"] and record.compensated == ["a"]
    assert record.error == "b: RuntimeError('boom')"


def test_a_durable_context_must_be_json(db: Any) -> None:
    saga = Saga(steps=[Step("a", write("a"))], name="json-only", durable=True)
    with pytest.raises(TypeError, match="key\\(s\\) 'when' are not"):
        saga.run({"when": object()})
    assert entries() == []


def test_resume_continues_from_the_recorded_step(db: Any, capsys: Any) -> None:
    calls: list[str] = []

    def flaky(ctx: dict[str, Any]) -> None:
        calls.append("ship")
        if len(calls) == 1:
            raise KeyboardInterrupt  # the process "dies": not an Exception, nothing compensates

    saga = Saga(
        steps=[
            Step("reserve", write("reserve"), write("release")),
            Step("ship", flaky),
            Step("notify", write("notify")),
        ],
        name="resumable",
        durable=True,
    )
    with pytest.raises(KeyboardInterrupt):
        saga.run({"order": 3})
    record = SagaRunRecord.objects.get(name="resumable")
    assert record.state == "running" and record.completed == ["reserve"]

    assert main(["saga", "list"]) == 0
    out = capsys.readouterr().out
    assert record.run_id in out and "resumable  running  completed=['reserve']" in out

    assert main(["saga", "resume", record.run_id]) == 0
    assert "resumable: done" in capsys.readouterr().out
    assert entries() == ["reserve", "notify"] and calls == ["ship", "ship"]
    record = SagaRunRecord.objects.get(run_id=record.run_id)
    assert record.state == "done" and record.completed == ["reserve", "ship", "notify"]
    # Finished runs are never resumed again.
    assert main(["saga", "resume", record.run_id]) == 1
    assert "no unfinished run with this id" in capsys.readouterr().err
    assert saga.resume(record.run_id) is None
    assert entries() == ["reserve", "notify"]


def test_resume_refuses_unknown_sagas_and_runs(db: Any, capsys: Any) -> None:
    assert main(["saga", "resume", "no-such-run"]) == 1
    assert "no unfinished run with this id" in capsys.readouterr().err
    with pytest.raises(UnknownSagaError, match="no durable saga named 'ghost'"):
        from dorm.contrib.saga import registered_saga

        registered_saga("ghost")


def test_a_run_taken_over_stops_its_old_owner(db: Any) -> None:
    """A resumer that claims a run makes the old owner's next step roll back."""
    import threading

    from dorm.contrib.saga import store

    if db.vendor == "sqlite":
        pytest.skip("SQLite admits one writer: no claim can land while a step runs")

    holder: dict[str, Any] = {}

    def steal(ctx: dict[str, Any]) -> None:
        Ledger.objects.create(entry="stolen-step")
        record = SagaRunRecord.objects.get(name="contested")
        # Another process claims the run while this step runs (outside this transaction).
        thread = threading.Thread(
            target=lambda: holder.update(c=store.claim(record.run_id, "default"))
        )
        thread.start()
        thread.join()

    saga = Saga(
        steps=[Step("a", write("a")), Step("b", steal), Step("c", write("c"))],
        name="contested",
        durable=True,
    )
    with pytest.raises(SagaOwnershipError, match="taken over by another process"):
        saga.run()
    assert holder["c"] is not None
    assert entries() == ["a"]  # step b rolled back, c never ran
