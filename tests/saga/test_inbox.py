"""The exactly-once inbox: the unique constraint decides, under racing processes too."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from inboxapp import Effect, RaceInbox  # noqa: E402

import dorm  # noqa: E402
from dorm.apps import Apps  # noqa: E402
from dorm.cli import main  # noqa: E402
from dorm.contrib.inbox import InboxRecord, idempotent  # noqa: E402
from dorm.migrations.autodetector import MigrationAutodetector  # noqa: E402
from dorm.migrations.state import ModelState, ProjectState  # noqa: E402
from dorm.migrations.writer import MigrationWriter  # noqa: E402


class Inbox(InboxRecord):
    class Meta:
        app_label = "inbox_tests"
        db_table = "inbox"


class Payment(dorm.Model):
    message_id = dorm.CharField(max_length=40)
    amount = dorm.IntegerField()

    class Meta:
        app_label = "inbox_tests"


MODELS = [Inbox, Payment, RaceInbox, Effect]

pytestmark = pytest.mark.usefixtures("clean_tables")


def test_every_subclass_gets_the_unique_constraint_in_state_and_migrations() -> None:
    registry = Apps()

    class Custom(InboxRecord):
        class Meta:
            apps = registry
            app_label = "shop"
            db_table = "custom_inbox"
            ordering = ["received_at"]

    [constraint] = Custom._meta.constraints
    assert isinstance(constraint, dorm.UniqueConstraint)
    assert constraint.fields == ["message_id", "handler_name"]
    state = ModelState.from_model(Custom)
    assert [c.fields for c in state.options["constraints"]] == [["message_id", "handler_name"]]
    after = ProjectState({("shop", "custom"): state})
    operations = MigrationAutodetector(ProjectState({}), after).changes()["shop"]
    source = MigrationWriter("0001_initial", "shop", [], operations).as_string()
    assert "dorm.UniqueConstraint(" in source
    assert "fields=['message_id', 'handler_name']" in source
    assert "name='custom_inbox_message_handler_uniq'" in source


def test_the_release_note_snippet_and_duplicates(db: Any) -> None:
    @idempotent(Inbox)
    def handle_payment(message_id: str, payload: dict[str, Any]) -> None:
        Payment.objects.create(message_id=message_id, amount=payload["amount"])

    assert handle_payment("msg-1", {"amount": 10}) is None  # the handler returns None
    assert handle_payment("msg-1", {"amount": 99}) is None  # a duplicate: not run
    assert list(Payment.objects.values_list("message_id", "amount")) == [("msg-1", 10)]
    [record] = Inbox.objects.all()
    assert record.message_id == "msg-1"
    assert record.handler_name.endswith("handle_payment")


def test_handler_result_and_handler_names(db: Any) -> None:
    @idempotent(Inbox, handler_name="billing")
    def bill(message_id: str) -> str:
        Payment.objects.create(message_id=message_id, amount=1)
        return "billed"

    @idempotent(Inbox, handler_name="mailing")
    def mail(message_id: str) -> str:
        Payment.objects.create(message_id=message_id, amount=2)
        return "mailed"

    assert bill("m") == "billed" and mail("m") == "mailed"  # one message, two consumers
    assert bill("m") is None and mail("m") is None
    assert Payment.objects.count() == 2
    assert sorted(Inbox.objects.values_list("handler_name", flat=True)) == ["billing", "mailing"]


def test_a_raising_handler_rolls_back_its_record_and_runs_again(db: Any) -> None:
    attempts: list[str] = []

    @idempotent(Inbox, handler_name="flaky")
    def flaky(message_id: str) -> str:
        attempts.append(message_id)
        Payment.objects.create(message_id=message_id, amount=len(attempts))
        if len(attempts) == 1:
            raise ConnectionError("downstream timeout")
        return "ok"

    with pytest.raises(ConnectionError):
        flaky("m-7")
    assert Inbox.objects.count() == 0 and Payment.objects.count() == 0
    assert flaky("m-7") == "ok"  # the redelivery runs it
    assert flaky("m-7") is None
    assert list(Payment.objects.values_list("amount", flat=True)) == [2]
    assert attempts == ["m-7", "m-7"]


def test_async_handlers(db: Any) -> None:
    @idempotent(Inbox, handler_name="async")
    async def handle(message_id: str) -> str:
        await Payment.objects.acreate(message_id=message_id, amount=5)
        return "done"

    async def deliver() -> list[Any]:
        first = await handle("a-1")
        again = await handle("a-1")
        return [first, again]

    assert asyncio.run(deliver()) == ["done", None]
    assert Payment.objects.count() == 1 and Inbox.objects.count() == 1


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="concrete InboxRecord subclass"):
        idempotent(InboxRecord)
    with pytest.raises(TypeError, match="concrete InboxRecord subclass"):
        idempotent(Payment)  # type: ignore[arg-type]

    @idempotent(Inbox)
    def handler(message_id: str) -> None:
        pass

    with pytest.raises(ValueError, match="message_id must not be empty"):
        handler("")
    with pytest.raises(ValueError, match="InboxRecord.message_id holds 255"):
        handler("x" * 256)


def test_prune_in_batches_and_from_the_cli(db: Any, capsys: Any) -> None:
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=40)
    Inbox.objects.bulk_create(
        [Inbox(message_id=f"old-{i}", handler_name="h", received_at=old) for i in range(5)]
        + [Inbox(message_id=f"new-{i}", handler_name="h") for i in range(3)]
    )
    assert Inbox.prune(older_than=datetime.timedelta(days=30), batch_size=2) == 5
    assert sorted(Inbox.objects.values_list("message_id", flat=True)) == [
        "new-0",
        "new-1",
        "new-2",
    ]
    Inbox.objects.bulk_create(
        [Inbox(message_id=f"old-{i}", handler_name="h", received_at=old) for i in range(3)]
    )
    assert main(["inbox", "prune", "--model", "inbox_tests.Inbox", "--older-than", "30d"]) == 0
    assert "inbox_tests.Inbox: 3 record(s) deleted" in capsys.readouterr().out
    assert Inbox.objects.count() == 3
    assert main(["inbox", "prune", "--model", "inbox_tests.Payment", "--older-than", "1d"]) == 1
    assert "not an InboxRecord subclass" in capsys.readouterr().err
    with pytest.raises(TypeError, match="timedelta"):
        Inbox.prune(older_than=30)  # type: ignore[arg-type]


def test_racing_processes_and_threads_handle_each_message_once(db: Any, tmp_path: Path) -> None:
    """3 processes x 4 threads deliver the same 200 message ids: each handler ran once."""
    env = {
        **os.environ,
        "DORM_INBOX_TEST_DB": json.dumps(db.settings),
        "DORM_INBOX_BARRIER": str(tmp_path),
        "DORM_INBOX_PROCS": "3",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "inboxapp.py"), "4", "200"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-2000:]
    ids = [i for i in Effect.objects.values_list("message_id", flat=True) if i != "warm-up"]
    assert len(ids) == 200 and len(set(ids)) == 200
    assert RaceInbox.objects.exclude(message_id="warm-up").count() == 200
    # The work was shared: more than one process ran handlers.
    assert len(set(Effect.objects.values_list("pid", flat=True))) > 1
