"""dorm.transaction on both backends: atomic blocks, savepoints, on_commit, hooks, threads."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import dorm
from dorm import plugins, transaction
from dorm.db.connection import get_connection
from dorm.exceptions import IntegrityError, TransactionManagementError
from dorm.plugins import hookimpl


class Account(dorm.Model):
    name = dorm.CharField(max_length=50, unique=True)
    balance = dorm.IntegerField(default=0)

    class Meta:
        app_label = "t_tx"


MODELS = [Account]
pytestmark = pytest.mark.usefixtures("clean_tables")


def names() -> list[str]:
    return sorted(Account.objects.values_list("name", flat=True))


def count_elsewhere(db: Any) -> int:
    """Count Account rows through a connection dorm does not manage (sees commits only)."""
    return int(db.count_rows(Account._meta.db_table))


def run_in_thread(target: Any) -> None:
    errors: list[BaseException] = []

    def wrapper() -> None:
        try:
            target()
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    thread = threading.Thread(target=wrapper)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "worker thread did not finish"
    if errors:
        raise errors[0]


class TxRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    @hookimpl
    def dorm_transaction_started(self, alias: str, savepoint: bool, durable: bool) -> None:
        self.events.append(
            ("started", {"alias": alias, "savepoint": savepoint, "durable": durable})
        )

    @hookimpl
    def dorm_transaction_committed(self, alias: str, savepoint: bool, duration: float) -> None:
        self.events.append(
            ("committed", {"alias": alias, "savepoint": savepoint, "duration": duration})
        )

    @hookimpl
    def dorm_transaction_rolled_back(
        self, alias: str, savepoint: bool, duration: float, error: BaseException | None
    ) -> None:
        self.events.append(
            (
                "rolled_back",
                {"alias": alias, "savepoint": savepoint, "duration": duration, "error": error},
            )
        )


@pytest.fixture
def tx_hooks() -> Iterator[TxRecorder]:
    recorder = TxRecorder()
    plugins.register(recorder, name="t-tx-recorder")
    try:
        yield recorder
    finally:
        plugins.unregister(recorder)


# --- atomic as a context manager and decorator ------------------------------------------


def test_context_manager_commits(db) -> None:
    with transaction.atomic():
        Account.objects.create(name="a")
        Account.objects.create(name="b")
        assert get_connection().in_atomic_block
    assert not get_connection().in_atomic_block
    assert names() == ["a", "b"]
    assert count_elsewhere(db) == 2


def test_exception_rolls_back_and_propagates(db) -> None:
    Account.objects.create(name="before")
    with pytest.raises(ValueError, match="boom"), transaction.atomic():
        Account.objects.create(name="a")
        Account.objects.filter(name="before").update(balance=5)
        raise ValueError("boom")
    assert names() == ["before"]
    assert Account.objects.get(name="before").balance == 0
    assert not get_connection().in_atomic_block


def test_bare_decorator(db) -> None:
    @transaction.atomic
    def create(name: str, fail: bool) -> str:
        Account.objects.create(name=name)
        assert get_connection().in_atomic_block
        if fail:
            raise RuntimeError(f"failed {name}")
        return name.upper()

    assert create("ok", False) == "OK"
    with pytest.raises(RuntimeError, match="failed bad"):
        create("bad", True)
    assert names() == ["ok"]
    assert create.__name__ == "create"


def test_decorator_with_using(db) -> None:
    @transaction.atomic(using="default")
    def create() -> None:
        Account.objects.create(name="x")
        raise KeyError("undo")

    with pytest.raises(KeyError):
        create()
    assert names() == []


def test_decorated_function_is_reentrant(db) -> None:
    """The same decorated function nested in itself opens savepoints, not new transactions."""

    @transaction.atomic
    def nest(depth: int) -> None:
        Account.objects.create(name=f"d{depth}")
        if depth < 3:
            with contextlib.suppress(ValueError):
                nest(depth + 1)
        if depth == 3:
            raise ValueError("deepest fails")

    nest(1)
    assert names() == ["d1", "d2"]


# --- nesting: savepoints --------------------------------------------------------------------


def test_inner_failure_rolls_back_only_inner_block(db) -> None:
    with transaction.atomic():
        Account.objects.create(name="outer")
        with pytest.raises(ValueError), transaction.atomic():
            Account.objects.create(name="inner")
            assert names() == ["inner", "outer"]
            raise ValueError("inner")
        assert names() == ["outer"]
        Account.objects.create(name="after")
    assert names() == ["after", "outer"]


def test_outer_failure_undoes_committed_inner_block(db) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        with transaction.atomic():
            Account.objects.create(name="inner")
        assert names() == ["inner"]
        raise RuntimeError("outer")
    assert names() == []
    assert count_elsewhere(db) == 0


def test_savepoints_three_levels(db) -> None:
    with transaction.atomic():
        Account.objects.create(name="l1")
        with transaction.atomic():
            Account.objects.create(name="l2")
            with pytest.raises(ZeroDivisionError), transaction.atomic():
                Account.objects.create(name="l3")
                _ = 1 / 0
            Account.objects.create(name="l2b")
    assert names() == ["l1", "l2", "l2b"]


def test_inner_block_without_savepoint_dooms_the_outer_block(db) -> None:
    with transaction.atomic():
        Account.objects.create(name="a")
        try:
            with transaction.atomic(savepoint=False):
                Account.objects.create(name="b")
                raise ValueError("no savepoint")
        except ValueError:
            pass
        assert transaction.get_rollback() is True
    assert names() == []


def test_integrity_error_in_inner_block_leaves_outer_usable(db) -> None:
    with transaction.atomic():
        Account.objects.create(name="dup")
        with pytest.raises(IntegrityError), transaction.atomic():
            Account.objects.create(name="dup")
        # On PostgreSQL the transaction would be aborted without the savepoint.
        Account.objects.create(name="later")
        assert Account.objects.count() == 2
    assert names() == ["dup", "later"]


def test_caught_integrity_error_without_inner_block_marks_rollback(db) -> None:
    with transaction.atomic():
        Account.objects.create(name="dup")
        with pytest.raises(IntegrityError):
            Account.objects.create(name="dup")
        assert transaction.get_rollback() is True
    assert names() == []


def test_durable_block_cannot_be_nested(db) -> None:
    with (
        pytest.raises(TransactionManagementError, match="durable atomic block"),
        transaction.atomic(),
    ):
        Account.objects.create(name="outer")
        with transaction.atomic(durable=True):
            Account.objects.create(name="never")
    assert names() == []
    assert not get_connection().in_atomic_block
    with transaction.atomic(durable=True):
        Account.objects.create(name="durable")
    assert names() == ["durable"]


# --- set_rollback ------------------------------------------------------------------------------


def test_set_rollback_rolls_back_without_exception(db) -> None:
    with transaction.atomic():
        Account.objects.create(name="a")
        assert transaction.get_rollback() is False
        transaction.set_rollback(True)
        assert transaction.get_rollback() is True
    assert names() == []


def test_set_rollback_can_be_cleared(db) -> None:
    with transaction.atomic():
        Account.objects.create(name="a")
        transaction.set_rollback(True)
        transaction.set_rollback(False)
    assert names() == ["a"]


def test_set_rollback_in_inner_block_rolls_back_only_inner(db) -> None:
    with transaction.atomic():
        Account.objects.create(name="outer")
        with transaction.atomic():
            Account.objects.create(name="inner")
            transaction.set_rollback(True)
        assert transaction.get_rollback() is False
    assert names() == ["outer"]


def test_set_rollback_outside_atomic_raises(db) -> None:
    with pytest.raises(TransactionManagementError, match="only valid inside atomic"):
        transaction.set_rollback(True)
    with pytest.raises(TransactionManagementError, match="only valid inside atomic"):
        transaction.get_rollback()


# --- on_commit -------------------------------------------------------------------------------


def test_on_commit_runs_after_outermost_commit(db) -> None:
    ran: list[tuple[str, int]] = []
    with transaction.atomic():
        Account.objects.create(name="a")
        with transaction.atomic():
            transaction.on_commit(lambda: ran.append(("inner", count_elsewhere(db))))
        assert ran == []
        transaction.on_commit(lambda: ran.append(("outer", count_elsewhere(db))))
        assert ran == []
    # Both ran after COMMIT, in registration order, and saw the committed row.
    assert ran == [("inner", 1), ("outer", 1)]


def test_on_commit_never_runs_on_rollback(db) -> None:
    ran: list[str] = []
    with pytest.raises(ValueError), transaction.atomic():
        transaction.on_commit(lambda: ran.append("x"))
        raise ValueError
    with transaction.atomic():
        transaction.on_commit(lambda: ran.append("y"))
        transaction.set_rollback(True)
    assert ran == []
    # Nothing is left over for the next transaction either.
    with transaction.atomic():
        pass
    assert ran == []


def test_on_commit_in_rolled_back_savepoint_is_dropped(db) -> None:
    ran: list[str] = []
    with transaction.atomic():
        transaction.on_commit(lambda: ran.append("outer-before"))
        with pytest.raises(ValueError), transaction.atomic():
            transaction.on_commit(lambda: ran.append("inner-failed"))
            with transaction.atomic():
                transaction.on_commit(lambda: ran.append("innermost-of-failed"))
            raise ValueError
        with transaction.atomic():
            transaction.on_commit(lambda: ran.append("inner-ok"))
        transaction.on_commit(lambda: ran.append("outer-after"))
    assert ran == ["outer-before", "inner-ok", "outer-after"]


def test_on_commit_outside_atomic_runs_at_once(db) -> None:
    ran: list[str] = []
    transaction.on_commit(lambda: ran.append("now"))
    assert ran == ["now"]
    with pytest.raises(TypeError, match="callable"):
        transaction.on_commit("not callable")  # type: ignore[arg-type]


def test_failing_on_commit_callback_is_logged_and_others_run(
    db, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("callback broke")

    with caplog.at_level(logging.ERROR, logger="dorm.transaction"), transaction.atomic():
        Account.objects.create(name="kept")
        transaction.on_commit(broken)
        transaction.on_commit(lambda: ran.append("second"))
    assert ran == ["second"]
    assert names() == ["kept"]
    records = [r for r in caplog.records if r.name == "dorm.transaction"]
    assert len(records) == 1
    assert "on_commit callback" in records[0].getMessage()
    assert records[0].exc_info is not None and "callback broke" in str(records[0].exc_info[1])


def test_on_commit_callback_may_open_a_new_transaction(db) -> None:
    def follow_up() -> None:
        with transaction.atomic():
            Account.objects.create(name="from-callback")

    with transaction.atomic():
        Account.objects.create(name="first")
        transaction.on_commit(follow_up)
    assert names() == ["first", "from-callback"]


# --- autocommit and visibility --------------------------------------------------------------


def test_autocommit_outside_atomic_is_visible_elsewhere_at_once(db) -> None:
    Account.objects.create(name="a")
    assert count_elsewhere(db) == 1
    Account.objects.filter(name="a").update(balance=3)
    Account.objects.create(name="b")
    assert count_elsewhere(db) == 2


def test_uncommitted_rows_are_invisible_elsewhere_until_commit(db) -> None:
    with transaction.atomic():
        Account.objects.create(name="a")
        assert Account.objects.count() == 1
        assert count_elsewhere(db) == 0
    assert count_elsewhere(db) == 1


def test_atomic_state_is_per_thread(db) -> None:
    seen: list[bool] = []
    with transaction.atomic():
        Account.objects.create(name="main")
        run_in_thread(lambda: seen.append(get_connection().in_atomic_block))
        assert get_connection().in_atomic_block
    assert seen == [False]


def test_two_threads_do_not_see_each_others_uncommitted_rows(db) -> None:
    if db.vendor != "postgresql":
        pytest.skip("SQLite serialises writers: a second writing transaction waits")
    inserted = threading.Barrier(2, timeout=20)
    counted = threading.Barrier(2, timeout=20)
    seen: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            with transaction.atomic():
                Account.objects.create(name=name)
                inserted.wait()
                seen[name] = names()
                counted.wait()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("t1", "t2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert seen == {"t1": ["t1"], "t2": ["t2"]}
    assert names() == ["t1", "t2"]


def test_sqlite_second_writer_waits_for_the_first(db) -> None:
    if db.vendor != "sqlite":
        pytest.skip("SQLite-specific locking")
    first_in = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def first() -> None:
        with transaction.atomic():
            Account.objects.create(name="first")
            first_in.set()
            release.wait(timeout=10)
            order.append("first-commit")

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert first_in.wait(timeout=10)
        timer = threading.Timer(0.2, release.set)
        timer.start()
        with transaction.atomic():  # BEGIN IMMEDIATE waits on the busy timeout
            order.append("second-begin")
            Account.objects.create(name="second")
        timer.join(timeout=10)
    finally:
        release.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert order == ["first-commit", "second-begin"]
    assert names() == ["first", "second"]


@pytest.fixture
def deferred_fk_tables(db) -> Iterator[None]:
    conn = get_connection()
    conn.execute("CREATE TABLE t_tx_parent (id integer PRIMARY KEY)")
    conn.execute(
        "CREATE TABLE t_tx_child (id integer PRIMARY KEY, parent_id integer "
        "REFERENCES t_tx_parent (id) DEFERRABLE INITIALLY DEFERRED)"
    )
    try:
        yield
    finally:
        conn.execute("DROP TABLE t_tx_child")
        conn.execute("DROP TABLE t_tx_parent")


@pytest.mark.usefixtures("deferred_fk_tables")
def test_failed_commit_rolls_back_and_raises(db, tx_hooks: TxRecorder) -> None:
    ran: list[str] = []
    conn = get_connection()
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.create(name="lost")
        conn.execute("INSERT INTO t_tx_child (id, parent_id) VALUES (1, 99)")
        transaction.on_commit(lambda: ran.append("x"))
    assert ran == []
    assert not conn.in_atomic_block
    assert names() == []
    assert conn.fetchone("SELECT COUNT(*) FROM t_tx_child") == (0,)
    kinds = [k for k, _e in tx_hooks.events]
    assert kinds == ["started", "rolled_back"]
    assert isinstance(tx_hooks.events[1][1]["error"], IntegrityError)
    # The connection is usable again, in and out of transactions.
    with transaction.atomic():
        Account.objects.create(name="next")
    assert names() == ["next"]
    assert count_elsewhere(db) == 1


# --- transaction hooks -----------------------------------------------------------------------


def test_hooks_on_commit_with_savepoint(db, tx_hooks: TxRecorder) -> None:
    with transaction.atomic(), transaction.atomic():
        Account.objects.create(name="a")
    kinds = [(kind, e.get("savepoint")) for kind, e in tx_hooks.events]
    assert kinds == [
        ("started", False),
        ("started", True),
        ("committed", True),
        ("committed", False),
    ]
    for _kind, event in tx_hooks.events:
        assert event["alias"] == "default"
    assert tx_hooks.events[0][1]["durable"] is False
    inner, outer = tx_hooks.events[2][1]["duration"], tx_hooks.events[3][1]["duration"]
    assert 0 < inner <= outer


def test_hooks_on_rollback_carry_the_error(db, tx_hooks: TxRecorder) -> None:
    error = ValueError("outer fails")
    with pytest.raises(ValueError), transaction.atomic(durable=True):
        with pytest.raises(KeyError), transaction.atomic():
            raise KeyError("inner fails")
        raise error
    assert [k for k, _e in tx_hooks.events] == [
        "started",
        "started",
        "rolled_back",
        "rolled_back",
    ]
    assert tx_hooks.events[0][1]["durable"] is True
    inner, outer = tx_hooks.events[2][1], tx_hooks.events[3][1]
    assert inner["savepoint"] is True and isinstance(inner["error"], KeyError)
    assert outer["savepoint"] is False and outer["error"] is error
    assert inner["duration"] > 0 and outer["duration"] > 0


def test_hooks_pair_up_around_blocks_without_savepoint(db, tx_hooks: TxRecorder) -> None:
    """A nested block without a savepoint opens nothing, so it reports nothing: every
    started event is matched by one committed or rolled_back event."""
    with transaction.atomic():
        with transaction.atomic(savepoint=False):
            Account.objects.create(name="a")
        Account.objects.bulk_create([Account(name="b")])  # its own atomic(savepoint=False)
        Account.objects.filter(name="a").delete()
    assert [(k, e["savepoint"]) for k, e in tx_hooks.events] == [
        ("started", False),
        ("committed", False),
    ]
    assert names() == ["b"]


def test_hooks_set_rollback_reports_no_error(db, tx_hooks: TxRecorder) -> None:
    with transaction.atomic():
        transaction.set_rollback(True)
    assert [k for k, _e in tx_hooks.events] == ["started", "rolled_back"]
    event = tx_hooks.events[1][1]
    assert event["error"] is None and event["savepoint"] is False and event["duration"] > 0


def test_broken_transaction_hook_is_logged_and_commit_stands(
    db, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        @hookimpl
        def dorm_transaction_committed(self, alias: str) -> None:
            raise RuntimeError("tracer broke")

    plugins.register(Broken(), name="t-tx-broken")
    try:
        with caplog.at_level(logging.ERROR, logger="dorm.plugins"), transaction.atomic():
            Account.objects.create(name="a")
    finally:
        plugins.unregister("t-tx-broken")
    assert names() == ["a"]
    messages = [r.getMessage() for r in caplog.records if r.name == "dorm.plugins"]
    assert any("dorm_transaction_committed" in m and "t-tx-broken" in m for m in messages)


def test_a_caught_error_dooms_the_block_as_in_django(db) -> None:
    Account.objects.create(name="taken")
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.create(name="first")
        with pytest.raises(IntegrityError):
            Account.objects.create(name="taken")  # no inner atomic(): the block is broken
        with pytest.raises(TransactionManagementError, match="until the end of the atomic"):
            Account.objects.create(name="after the error")
        raise IntegrityError("leave the block")
    # The whole block rolled back, on SQLite as on PostgreSQL.
    assert sorted(Account.objects.values_list("name", flat=True)) == ["taken"]


def test_an_inner_atomic_recovers_from_its_error(db) -> None:
    Account.objects.create(name="taken")
    with transaction.atomic():
        Account.objects.create(name="first")
        with pytest.raises(IntegrityError), transaction.atomic():
            Account.objects.create(name="taken")
        Account.objects.create(name="second")  # the outer block is still usable
    assert sorted(Account.objects.values_list("name", flat=True)) == ["first", "second", "taken"]


def test_set_rollback_blocks_further_statements(db) -> None:
    with transaction.atomic():
        Account.objects.create(name="doomed")
        transaction.set_rollback(True)
        with pytest.raises(TransactionManagementError):
            Account.objects.count()
    assert Account.objects.filter(name="doomed").count() == 0


# -- savepoints are sent only for blocks that run a statement ----------------------------------


def _statements(ctx: Any) -> list[str]:
    return [" ".join(q["sql"].split()[:2]) for q in ctx.captured_queries]


def test_nested_block_without_statements_sends_no_savepoint(db: Any) -> None:
    from dorm.test import CaptureQueriesContext

    with transaction.atomic():
        Account.objects.create(name="outer")
        with CaptureQueriesContext() as ctx:
            for _ in range(3):
                with transaction.atomic():
                    pass
            with contextlib.suppress(ValueError), transaction.atomic():
                raise ValueError("nothing ran")
            with transaction.atomic():
                transaction.set_rollback(True)
    assert ctx.captured_queries == []
    assert names() == ["outer"]


def test_savepoint_is_sent_before_the_first_statement_of_each_pending_block(db: Any) -> None:
    from dorm.test import CaptureQueriesContext

    with transaction.atomic():
        with CaptureQueriesContext() as ctx, transaction.atomic():  # pending
            with contextlib.suppress(IntegrityError), transaction.atomic():  # pending
                Account.objects.create(name="a")  # sends both, in order
                Account.objects.create(name="a")  # unique: rolls back to the inner one
            Account.objects.create(name="b")
        sent = _statements(ctx)
        assert [s.split("_sp_")[0] for s in sent[:3]] == [
            "SAVEPOINT dorm",
            "SAVEPOINT dorm",
            "INSERT INTO",
        ]
        outer, inner = (int(s.rsplit("_", 1)[1]) for s in sent[:2])
        assert inner == outer + 1  # the outer block's savepoint first
        assert "ROLLBACK TO" in sent and sent[-1] == "RELEASE SAVEPOINT"
    assert names() == ["b"]


def test_rolled_back_pending_block_drops_its_on_commit_callbacks(db: Any) -> None:
    ran: list[str] = []
    with transaction.atomic():
        with transaction.atomic():
            transaction.on_commit(lambda: ran.append("kept"))
        with contextlib.suppress(ValueError), transaction.atomic():
            transaction.on_commit(lambda: ran.append("dropped"))
            raise ValueError
        with transaction.atomic():
            Account.objects.create(name="x")
            transaction.on_commit(lambda: ran.append("after statement"))
    assert ran == ["kept", "after statement"]
    assert names() == ["x"]


def test_async_nested_blocks_send_savepoints_lazily(db: Any) -> None:
    import asyncio

    async def main() -> list[str]:
        async with transaction.aatomic():
            await Account.objects.acreate(name="one")
            async with transaction.aatomic():
                pass
            try:
                async with transaction.aatomic():
                    await Account.objects.acreate(name="two")
                    raise ValueError
            except ValueError:
                pass
        return [a.name async for a in Account.objects.order_by("name")]

    assert asyncio.run(main()) == ["one"]
