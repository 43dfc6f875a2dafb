"""Connections on both backends: SQLite PRAGMAs, the PostgreSQL pool, reconnects, routing
between two aliases, the query log, assertNumQueries, close_all and reset_connections."""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm import transaction
from dorm.db.connection import close_all, get_connection, reset_connections
from dorm.exceptions import ImproperlyConfigured, OperationalError
from dorm.migrations.schema import SchemaEditor
from dorm.test import CaptureQueriesContext, assertNumQueries


class Item(dorm.Model):
    name = dorm.CharField(max_length=50)
    api_token = dorm.CharField(max_length=50, default="")

    class Meta:
        app_label = "t_conn"


MODELS = [Item]
pytestmark = pytest.mark.usefixtures("clean_tables")


def sqlite_only(db: Any) -> None:
    if db.vendor != "sqlite":
        pytest.skip("SQLite-specific")


def postgres_only(db: Any) -> None:
    if db.vendor != "postgresql":
        pytest.skip("PostgreSQL-specific")


def configure(db: Any, **databases: dict[str, Any]) -> None:
    dorm.configure(DATABASES={"default": db.settings, **databases})


@pytest.fixture
def restore_settings(db: Any) -> Iterator[None]:
    try:
        yield
    finally:
        dorm.configure(DATABASES={"default": db.settings})


@pytest.fixture
def other_db(db: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A second database with the Item table; returns its DATABASES entry."""
    if db.vendor == "sqlite":
        other = {"ENGINE": "sqlite", "NAME": str(tmp_path / "other.db")}
        name = None
    else:
        name = f"t_conn_other_{uuid.uuid4().hex[:8]}"
        db.pg.cluster.create_database(name)
        other = db.pg.cluster.settings(name)
    try:
        configure(db, other=other)
        with SchemaEditor(get_connection("other")) as editor:
            editor.create_model(Item)
        yield other
    finally:
        dorm.configure(DATABASES={"default": db.settings})
        if name is not None:
            db.pg.cluster.drop_database(name)


def raw_names(settings: dict[str, Any]) -> list[str]:
    """Item names read through a connection dorm does not manage."""
    table = Item._meta.db_table
    if settings["ENGINE"] == "sqlite":
        conn = sqlite3.connect(settings["NAME"], timeout=5)
        try:
            rows = conn.execute(f'SELECT name FROM "{table}" ORDER BY name').fetchall()
        finally:
            conn.close()
    else:
        import psycopg

        dsn = (
            f"postgresql://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/"
            f"{settings['NAME']}"
        )
        with psycopg.connect(dsn, autocommit=True) as conn:
            rows = conn.execute(f'SELECT name FROM "{table}" ORDER BY name').fetchall()
    return [r[0] for r in rows]


# --- SQLite connection setup -----------------------------------------------------------------


def pragma(name: str, alias: str = "default") -> Any:
    with get_connection(alias).cursor() as cur:
        cur.execute(f"PRAGMA {name}")
        row = cur.fetchone()
    assert row is not None
    return row[0]


def test_sqlite_pragmas(db) -> None:
    sqlite_only(db)
    assert pragma("journal_mode") == "wal"
    assert pragma("foreign_keys") == 1
    assert pragma("busy_timeout") == 5000


def test_sqlite_pragmas_in_every_thread(db) -> None:
    sqlite_only(db)
    seen: list[tuple[Any, Any, Any]] = []

    def worker() -> None:
        seen.append((pragma("journal_mode"), pragma("foreign_keys"), pragma("busy_timeout")))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert seen == [("wal", 1, 5000)]


def test_sqlite_timeout_option_sets_busy_timeout(db, tmp_path: Path, restore_settings) -> None:
    sqlite_only(db)
    configure(
        db, other={"ENGINE": "sqlite", "NAME": str(tmp_path / "t.db"), "OPTIONS": {"timeout": 1.5}}
    )
    assert pragma("busy_timeout", "other") == 1500
    assert pragma("journal_mode", "other") == "wal"


def test_sqlite_memory_database_is_shared_between_threads(db, restore_settings) -> None:
    sqlite_only(db)
    configure(db, mem={"ENGINE": "sqlite", "NAME": ":memory:"})
    mem = get_connection("mem")
    assert pragma("foreign_keys", "mem") == 1
    mem.execute("CREATE TABLE shared (x integer)")
    mem.execute("INSERT INTO shared VALUES (1)")
    seen: list[Any] = []
    thread = threading.Thread(target=lambda: seen.append(mem.fetchone("SELECT x FROM shared")))
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert seen == [(1,)]


def test_sqlite_foreign_keys_are_enforced(db) -> None:
    sqlite_only(db)
    conn = get_connection()
    conn.execute("CREATE TABLE t_conn_p (id integer PRIMARY KEY)")
    try:
        conn.execute("CREATE TABLE t_conn_c (p integer REFERENCES t_conn_p (id))")
        try:
            with pytest.raises(dorm.exceptions.IntegrityError, match="FOREIGN KEY"):
                conn.execute("INSERT INTO t_conn_c VALUES (42)")
            assert conn.fetchone("SELECT COUNT(*) FROM t_conn_c") == (0,)
        finally:
            conn.execute("DROP TABLE t_conn_c")
    finally:
        conn.execute("DROP TABLE t_conn_p")


# --- PostgreSQL pool -------------------------------------------------------------------------


def test_pg_pool_settings_reach_psycopg_pool(db, restore_settings) -> None:
    postgres_only(db)
    configure(
        db, pooled={**db.settings, "MIN_POOL_SIZE": 2, "MAX_POOL_SIZE": 3, "POOL_TIMEOUT": 4.5}
    )
    pool = get_connection("pooled").pool
    assert (pool.min_size, pool.max_size, pool.timeout) == (2, 3, 4.5)
    assert get_connection("pooled").fetchone("SELECT 1") == (1,)
    default_pool = get_connection().pool
    assert (default_pool.min_size, default_pool.max_size, default_pool.timeout) == (1, 10, 30)


def test_pg_min_pool_size_connections_are_opened(db, restore_settings) -> None:
    postgres_only(db)
    configure(db, pooled={**db.settings, "MIN_POOL_SIZE": 3, "MAX_POOL_SIZE": 4})
    pool = get_connection("pooled").pool
    pool.wait(timeout=10)
    assert pool.get_stats()["pool_size"] == 3
    close_all()
    assert pool.closed
    assert get_connection("pooled").fetchone("SELECT 1") == (1,)
    assert get_connection("pooled").pool is not pool


def test_pg_sequential_statements_stay_on_one_server_process(db, restore_settings) -> None:
    postgres_only(db)
    configure(db, pooled={**db.settings, "MIN_POOL_SIZE": 1, "MAX_POOL_SIZE": 10})
    conn = get_connection("pooled")
    pids = {conn.fetchone("SELECT pg_backend_pid()")[0] for _ in range(8)}
    assert len(pids) == 1
    assert conn.pool.get_stats()["pool_size"] == 1  # no connection opened for nothing


def test_pg_checkout_beyond_max_pool_size_times_out(db, restore_settings) -> None:
    postgres_only(db)
    configure(db, pooled={**db.settings, "MAX_POOL_SIZE": 2, "POOL_TIMEOUT": 0.3})
    holding = threading.Barrier(3, timeout=20)
    release = threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            with transaction.atomic(using="pooled"):
                Item.objects.using("pooled").count()
                holding.wait()
                release.wait(timeout=20)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        holding.wait()
        with pytest.raises(OperationalError) as info:
            Item.objects.using("pooled").count()
        message = str(info.value)
        assert "'pooled'" in message
        assert "POOL_TIMEOUT=0.3" in message and "MAX_POOL_SIZE=2" in message
    finally:
        release.set()
        for t in threads:
            t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    # Connections given back: the pool serves again.
    assert Item.objects.using("pooled").count() == 0


def test_pg_query_after_server_restart_reconnects(db, caplog: pytest.LogCaptureFixture) -> None:
    postgres_only(db)
    Item.objects.create(name="before")
    assert Item.objects.count() == 1  # the pool now holds an idle connection
    db.pg.cluster.restart()
    with caplog.at_level(logging.WARNING, logger="dorm.db"):
        assert list(Item.objects.values_list("name", flat=True)) == ["before"]
    assert any("retrying on a new connection" in r.getMessage() for r in caplog.records)
    Item.objects.create(name="after")
    assert raw_names(db.settings) == ["after", "before"]


def test_pg_atomic_after_server_restart_reconnects(db, caplog: pytest.LogCaptureFixture) -> None:
    postgres_only(db)
    Item.objects.create(name="before")
    db.pg.cluster.restart()
    with caplog.at_level(logging.WARNING, logger="dorm.db"), transaction.atomic():
        Item.objects.create(name="in-tx")
    assert any("retrying BEGIN" in r.getMessage() for r in caplog.records)
    assert raw_names(db.settings) == ["before", "in-tx"]


def test_pg_iterator_after_server_restart_reconnects(db) -> None:
    postgres_only(db)
    Item.objects.bulk_create([Item(name=f"n{i}") for i in range(5)])
    db.pg.cluster.restart()
    assert [i.name for i in Item.objects.order_by("name").iterator(chunk_size=2)] == [
        "n0",
        "n1",
        "n2",
        "n3",
        "n4",
    ]


def test_pg_restart_inside_atomic_fails_then_recovers(db) -> None:
    postgres_only(db)
    with pytest.raises(OperationalError), transaction.atomic():
        Item.objects.create(name="lost")
        db.pg.cluster.restart()
        Item.objects.create(name="also-lost")
    assert not get_connection().in_atomic_block
    assert Item.objects.count() == 0
    with transaction.atomic():
        Item.objects.create(name="kept")
    assert raw_names(db.settings) == ["kept"]


# --- routing between two aliases -------------------------------------------------------------


class ToOther:
    def __init__(self) -> None:
        self.calls: list[tuple[str, type, dict[str, Any]]] = []

    def db_for_read(self, model: type, **hints: Any) -> str | None:
        self.calls.append(("read", model, hints))
        return "other" if model is Item else None

    def db_for_write(self, model: type, **hints: Any) -> str | None:
        self.calls.append(("write", model, hints))
        return "other" if model is Item else None


class NoOpinion:
    def db_for_read(self, model: type, **hints: Any) -> None:
        return None

    def db_for_write(self, model: type, **hints: Any) -> None:
        return None


def test_using_and_save_using_with_two_aliases(db, other_db) -> None:
    Item.objects.create(name="here")
    Item.objects.using("other").create(name="there")
    obj = Item(name="saved-there")
    obj.save(using="other")
    assert obj._state.db == "other"
    assert raw_names(db.settings) == ["here"]
    assert raw_names(other_db) == ["saved-there", "there"]
    assert list(Item.objects.values_list("name", flat=True)) == ["here"]
    assert Item.objects.using("other").count() == 2
    fetched = Item.objects.using("other").get(name="there")
    assert fetched._state.db == "other"
    fetched.name = "there-renamed"
    fetched.save()  # an object loaded from "other" is saved back there
    fetched.refresh_from_db()
    assert fetched.name == "there-renamed"
    assert raw_names(other_db) == ["saved-there", "there-renamed"]
    Item.objects.using("other").filter(name="saved-there").delete()
    fetched.delete()
    assert raw_names(other_db) == []
    assert raw_names(db.settings) == ["here"]


def test_atomic_using_other_alias_is_independent(db, other_db) -> None:
    with transaction.atomic():
        Item.objects.create(name="default-kept")
        with pytest.raises(RuntimeError), transaction.atomic(using="other"):
            Item.objects.using("other").create(name="other-lost")
            assert get_connection("other").in_atomic_block
            raise RuntimeError
        assert not get_connection("other").in_atomic_block
        assert get_connection().in_atomic_block
    assert raw_names(db.settings) == ["default-kept"]
    assert raw_names(other_db) == []


def test_on_commit_follows_the_alias_of_its_transaction(db, other_db) -> None:
    ran: list[str] = []
    with transaction.atomic(using="other"):
        Item.objects.using("other").create(name="x")
        transaction.on_commit(lambda: ran.append("other"), using="other")
        transaction.on_commit(lambda: ran.append("default-now"))
        assert ran == ["default-now"]
    assert ran == ["default-now", "other"]
    with transaction.atomic(using="other"):
        transaction.on_commit(lambda: ran.append("dropped"), using="other")
        transaction.set_rollback(True, using="other")
    assert ran == ["default-now", "other"]


def test_router_object_routes_reads_and_writes(db, other_db) -> None:
    router = ToOther()
    dorm.configure(
        DATABASES={"default": db.settings, "other": other_db},
        DATABASE_ROUTERS=[NoOpinion(), router],
    )
    obj = Item.objects.create(name="routed")
    assert obj._state.db == "other"
    assert raw_names(other_db) == ["routed"]
    assert raw_names(db.settings) == []
    assert list(Item.objects.values_list("name", flat=True)) == ["routed"]
    assert Item.objects.using("default").count() == 0
    assert ("write", Item) in [(k, m) for k, m, _h in router.calls]
    assert ("read", Item) in [(k, m) for k, m, _h in router.calls]
    # save() of a new object passes it as the instance hint.
    late = Item(name="late")
    late.save()
    assert late._state.db == "other"
    assert any(h.get("instance") is late for k, _m, h in router.calls if k == "write")
    assert raw_names(other_db) == ["late", "routed"]
    # Explicit using() beats the router.
    Item.objects.using("default").create(name="explicit")
    assert raw_names(db.settings) == ["explicit"]


def test_routers_set_after_unrouted_gets_route_the_next_get(db, other_db) -> None:
    """Manager.get() remembers that no router is set; adding one (to the setting's list in
    place, or by configure()) routes the very next get()."""
    from dorm.conf import settings

    Item.objects.using("other").create(name="on-other")
    local = Item.objects.create(name="on-default")
    for _ in range(2):
        assert Item.objects.get(name="on-default").pk == local.pk
    with pytest.raises(Item.DoesNotExist):
        Item.objects.get(name="on-other")
    settings.DATABASE_ROUTERS.append(ToOther())
    try:
        assert Item.objects.get(name="on-other")._state.db == "other"
        with pytest.raises(Item.DoesNotExist):
            Item.objects.get(name="on-default")
    finally:
        settings.DATABASE_ROUTERS.clear()
    assert Item.objects.get(name="on-default").pk == local.pk
    dorm.configure(
        DATABASES={"default": db.settings, "other": other_db}, DATABASE_ROUTERS=[ToOther()]
    )
    assert Item.objects.get(name="on-other")._state.db == "other"


def test_router_dotted_path(db, other_db, tmp_path: Path, monkeypatch) -> None:
    module = f"t_conn_routers_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "class Router:\n"
        "    def db_for_read(self, model, **hints):\n"
        "        return 'other'\n"
        "    def db_for_write(self, model, **hints):\n"
        "        return 'other'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    dorm.configure(
        DATABASES={"default": db.settings, "other": other_db},
        DATABASE_ROUTERS=[f"{module}.Router"],
    )
    Item.objects.create(name="via-path")
    assert raw_names(other_db) == ["via-path"]
    assert raw_names(db.settings) == []
    assert Item.objects.get().name == "via-path"


def test_router_bad_dotted_path_is_improperly_configured(db, restore_settings) -> None:
    dorm.configure(
        DATABASES={"default": db.settings}, DATABASE_ROUTERS=["no_such_module_xyz.Router"]
    )
    with pytest.raises(ImproperlyConfigured, match="no_such_module_xyz.Router"):
        Item.objects.count()


def test_unknown_alias_is_improperly_configured(db) -> None:
    with pytest.raises(ImproperlyConfigured, match="'missing' is not in DATABASES"):
        Item.objects.using("missing").count()
    assert Item.objects.count() == 0


# --- query log and query counting -----------------------------------------------------------


def test_query_log_has_sql_params_and_duration(db, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="dorm.db"):
        Item.objects.create(name="logged", api_token="s3cr3t-value")
        list(Item.objects.filter(name="logged"))
    records = [r for r in caplog.records if r.name == "dorm.db"]
    inserts = [r for r in records if "INSERT INTO" in r.sql]  # type: ignore[attr-defined]
    selects = [r for r in records if r.sql.startswith("SELECT")]  # type: ignore[attr-defined]
    assert len(inserts) == 1 and len(selects) == 1
    insert = inserts[0]
    assert Item._meta.db_table in insert.getMessage()
    assert "logged" in insert.params  # type: ignore[attr-defined]
    assert "'logged'" in insert.getMessage()
    # A sensitive column (name contains "token") is masked in the log.
    assert "s3cr3t-value" not in insert.getMessage()
    assert "***" in insert.params  # type: ignore[attr-defined]
    assert insert.duration > 0  # type: ignore[attr-defined]
    assert insert.alias == "default"  # type: ignore[attr-defined]
    assert "alias=default" in insert.getMessage()
    assert tuple(selects[0].params) == ("logged",)  # type: ignore[attr-defined]


def test_query_log_reports_failed_statement(db, caplog: pytest.LogCaptureFixture) -> None:
    conn = get_connection()
    sql = f"SELECT nope FROM t_conn_missing WHERE x = {conn.ops.placeholder}"
    with (
        caplog.at_level(logging.DEBUG, logger="dorm.db"),
        pytest.raises(dorm.exceptions.DatabaseError, match="t_conn_missing"),
    ):
        conn.execute(sql, (7,))
    (record,) = [r for r in caplog.records if r.name == "dorm.db" and "t_conn_missing" in r.sql]
    assert "error=" in record.getMessage() and "t_conn_missing" in record.getMessage()
    assert tuple(record.params) == (7,)  # type: ignore[attr-defined]


def test_query_log_is_silent_above_debug(db, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="dorm.db"):
        Item.objects.create(name="quiet")
    assert [r for r in caplog.records if r.name == "dorm.db"] == []


def test_assert_num_queries_passes(db) -> None:
    with assertNumQueries(2) as ctx:
        Item.objects.create(name="a")
        Item.objects.count()
    assert len(ctx) == 2
    assert "INSERT INTO" in ctx[0]["sql"] and ctx[0]["alias"] == "default"
    assert ctx[0]["time"] >= 0


def test_assert_num_queries_fails_with_listing(db) -> None:
    with pytest.raises(AssertionError) as info, assertNumQueries(1):
        Item.objects.create(name="a")
        Item.objects.filter(name="a").exists()
    message = str(info.value)
    assert message.startswith("2 queries executed, 1 expected")
    assert "Captured queries were:" in message
    assert "1. INSERT INTO" in message and "\n2. SELECT" in message
    with (
        pytest.raises(AssertionError, match="0 queries executed, 1 expected"),
        assertNumQueries(1),
    ):
        pass


def test_assert_num_queries_skips_begin_commit_but_counts_savepoints(db) -> None:
    with CaptureQueriesContext() as ctx, transaction.atomic():
        Item.objects.create(name="a")
        with transaction.atomic():
            Item.objects.create(name="b")
    sqls = [q["sql"] for q in ctx.captured_queries]
    assert [s.split()[0] for s in sqls] == ["INSERT", "SAVEPOINT", "INSERT", "RELEASE"]
    assert Item.objects.filter(name__in=["a", "b"]).count() == 2


def test_assert_num_queries_ignores_other_alias(db, other_db) -> None:
    with assertNumQueries(0):
        Item.objects.using("other").create(name="elsewhere")
    with assertNumQueries(1, using="other"):
        Item.objects.using("other").count()


# --- close_all / reset_connections -----------------------------------------------------------


def test_close_all_reopens_on_next_use(db) -> None:
    Item.objects.create(name="a")
    wrapper = get_connection()
    with wrapper.connection() as raw:
        old = raw
    close_all()
    if db.vendor == "sqlite":
        with pytest.raises(sqlite3.ProgrammingError):
            old.execute("SELECT 1")
    else:
        assert old.closed
    assert get_connection() is wrapper
    assert Item.objects.count() == 1
    Item.objects.create(name="b")
    assert raw_names(db.settings) == ["a", "b"]


def test_sqlite_connection_closed_underneath_fails_once_then_a_new_one_serves(db) -> None:
    """A thread's SQLite connection closed by hand (not by close_all): the statement fails
    with a DatabaseError naming the cause, and the next one runs on a new connection."""
    sqlite_only(db)
    kept = Item.objects.create(name="kept")
    with get_connection().connection() as raw:
        raw.close()
    with pytest.raises(dorm.exceptions.DatabaseError, match="closed database"):
        Item.objects.get(pk=kept.pk)
    assert Item.objects.get(pk=kept.pk).name == "kept"
    with get_connection().connection() as fresh:
        assert fresh is not raw
    Item.objects.create(name="after")
    assert raw_names(db.settings) == ["after", "kept"]


def test_a_query_hook_registered_after_statements_sees_the_next_ones(db) -> None:
    """Whether a plugin observes queries is remembered between statements; registering or
    unregistering one changes the answer for the very next statement."""
    from dorm import plugins
    from dorm.plugins import hookimpl

    seen: list[str] = []

    class Tracer:
        @hookimpl
        def dorm_pre_query(self, alias: str, sql: str) -> None:
            seen.append(f"pre {alias} {sql.split()[0]}")

        @hookimpl
        def dorm_post_query(self, alias: str, sql: str, error: Any) -> None:
            seen.append(f"post {alias} {sql.split()[0]} {error is None}")

    item = Item.objects.create(name="a")
    for _ in range(2):
        assert Item.objects.get(pk=item.pk).name == "a"
    assert seen == []
    plugins.register(Tracer(), name="t-conn-tracer")
    try:
        assert Item.objects.get(pk=item.pk).name == "a"
        assert seen == ["pre default SELECT", "post default SELECT True"]
    finally:
        plugins.unregister("t-conn-tracer")
    assert Item.objects.get(pk=item.pk).name == "a"
    assert len(seen) == 2


def test_sqlite_threads_keep_their_own_connections(db) -> None:
    sqlite_only(db)
    first = Item.objects.create(name="a")
    seen: dict[str, Any] = {}

    def other_thread() -> None:
        with get_connection().connection() as raw:
            seen["raw"] = raw
        seen["name"] = Item.objects.get(pk=first.pk).name

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    with get_connection().connection() as mine:
        assert mine is not seen["raw"]
        with get_connection().connection() as again:
            assert again is mine
    assert seen["name"] == "a"


def test_close_all_from_another_thread(db) -> None:
    Item.objects.create(name="a")
    thread = threading.Thread(target=close_all)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert Item.objects.count() == 1


def test_close_all_from_another_thread_never_turns_a_transaction_into_autocommit(db) -> None:
    """A thread inside atomic() keeps its transaction state when another thread closes
    every connection: what it wrote is rolled back, never committed statement by statement."""
    with pytest.raises((ValueError, dorm.exceptions.DatabaseError)), transaction.atomic():
        Item.objects.create(name="a")
        thread = threading.Thread(target=close_all)
        thread.start()
        thread.join(timeout=10)
        assert not thread.is_alive()
        assert get_connection().in_atomic_block
        try:
            Item.objects.create(name="b")
        finally:
            assert get_connection().in_atomic_block
        raise ValueError("roll back a and b")
    assert not get_connection().in_atomic_block
    assert raw_names(db.settings) == []
    with transaction.atomic():
        Item.objects.create(name="c")
    assert raw_names(db.settings) == ["c"]


def test_close_all_from_another_thread_then_commit(db) -> None:
    """Committing after another thread closed the connections either commits everything
    (PostgreSQL: the checked-out connection stays open) or raises and keeps nothing."""
    outcome = "committed"
    try:
        with transaction.atomic():
            Item.objects.create(name="a")
            thread = threading.Thread(target=close_all)
            thread.start()
            thread.join(timeout=10)
    except dorm.exceptions.DatabaseError:
        outcome = "failed"
    assert not get_connection().in_atomic_block
    assert raw_names(db.settings) == (["a"] if outcome == "committed" else [])
    assert outcome == ("committed" if db.vendor == "postgresql" else "failed")
    Item.objects.create(name="b")
    assert "b" in raw_names(db.settings)


def test_reset_connections_rebuilds_wrappers(db) -> None:
    Item.objects.create(name="a")
    wrapper = get_connection()
    reset_connections()
    fresh = get_connection()
    assert fresh is not wrapper
    assert fresh.alias == "default" and fresh.vendor == db.vendor
    assert Item.objects.count() == 1


def test_configure_switches_databases(db, other_db) -> None:
    Item.objects.using("other").create(name="only-other")
    dorm.configure(DATABASES={"default": other_db})
    assert list(Item.objects.values_list("name", flat=True)) == ["only-other"]
    dorm.configure(DATABASES={"default": db.settings, "other": other_db})
    assert Item.objects.count() == 0
