"""The databases of a test session: made once, then rolled back or emptied after each test.

``SessionDatabases(mode, directory, cluster)`` stands in for the project's ``DATABASES``
while a test session runs (the pytest plugin makes one; nothing here imports pytest):

- ``mode="settings"``: each alias of the project's ``DATABASES`` gets a test database of
  its own kind. A SQLite file becomes a new file in ``directory`` (the project's file is
  never opened; ``:memory:`` stays in memory); a PostgreSQL database ``NAME`` becomes
  ``test_NAME`` on the same server, created for the session (replacing a leftover one)
  and dropped at the end; aliases naming one PostgreSQL database share its test
  database. A project without ``DATABASES`` gets one SQLite file.
- ``mode="sqlite"``: every alias gets a SQLite file in ``directory``.
- ``mode="postgres"``: every alias gets a database ``test_<alias>`` on ``cluster``, a
  throwaway cluster (``dorm.test.postgres``).

``setup()`` then makes the tables of ``INSTALLED_APPS`` in every test database: the apps
with migrations are migrated as ``dorm migrate`` does, and the models of the apps without
any get their tables from ``SchemaEditor.create_model``.

A test then runs inside ``rolled_back()``: one ``atomic()`` block per alias, rolled back
at the end (the test's own ``atomic()`` blocks become savepoints); or, for a test whose
code under test uses other connections (other threads, the async API on another event
loop), plainly, followed by ``flush()``, which empties every table but the migration
history.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dorm.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from dorm.test.postgres import PgCluster

__all__ = ["MODES", "SessionDatabases"]

MODES = ("settings", "sqlite", "postgres")
_POOL_KEYS = ("MIN_POOL_SIZE", "MAX_POOL_SIZE", "POOL_TIMEOUT")
_MIGRATIONS_TABLE = "dorm_migrations"
# The first keyword of a statement that changes the database (what a rollback must undo).
_WRITES = frozenset(
    {"INSERT", "UPDATE", "DELETE", "REPLACE", "UPSERT", "MERGE", "CREATE", "DROP", "ALTER"}
    | {"TRUNCATE", "COPY"}
)
_FIRST_WORD = re.compile(r"\s*(\w+)")


def _is_write(sql: str) -> bool:
    match = _FIRST_WORD.match(sql)
    return match is not None and match.group(1).upper() in _WRITES


def _in_memory(name: str) -> bool:
    return name == ":memory:" or "mode=memory" in name


def _identifier(text: str) -> str:
    """``text`` as a lower-case database name (letters, digits, underscores)."""
    return re.sub(r"[^a-z0-9_]", "_", text.lower())


def _server_key(entry: dict[str, Any]) -> tuple[Any, ...] | None:
    """What identifies a PostgreSQL database across aliases (None for SQLite)."""
    if entry.get("ENGINE") != "postgresql":
        return None
    return (entry.get("HOST"), entry.get("PORT"), entry.get("NAME"))


def _conninfo(entry: dict[str, Any], dbname: str) -> str:
    from psycopg.conninfo import make_conninfo

    params: dict[str, Any] = {"dbname": dbname}
    for key, name in (("USER", "user"), ("PASSWORD", "password"), ("HOST", "host")):
        if entry.get(key) not in ("", None):
            params[name] = entry[key]
    if entry.get("PORT") not in ("", None):
        params["port"] = entry["PORT"]
    params.update(entry.get("OPTIONS") or {})
    return str(make_conninfo(**params))


def _admin(entry: dict[str, Any], *statements: str) -> None:
    """Run ``statements`` on the server of ``entry``, connected to its ``postgres`` database
    (``WITH (FORCE)`` is left out before PostgreSQL 13)."""
    import psycopg

    try:
        with psycopg.connect(_conninfo(entry, "postgres"), autocommit=True) as conn:
            force = " WITH (FORCE)" if conn.info.server_version >= 130000 else ""
            for statement in statements:
                conn.execute(statement.replace(" WITH (FORCE)", force))
    except psycopg.Error as exc:
        where = f"host {entry.get('HOST') or 'localhost'!r}, port {entry.get('PORT') or 5432}"
        raise ImproperlyConfigured(
            f"dorm test databases: {statements[-1]} on the PostgreSQL server of DATABASES "
            f"({where}, user {entry.get('USER') or '-'!r}) failed: "
            f"{' '.join(str(exc).split())} (making test databases needs the CREATEDB "
            f"privilege; dorm_database = postgres uses a throwaway cluster instead)"
        ) from exc


class SessionDatabases:
    """The test databases of one session, standing in for the project's ``DATABASES``
    between ``setup()`` and ``teardown()`` (see the module docstring)."""

    def __init__(
        self,
        mode: str,
        directory: Path,
        cluster: PgCluster | None = None,
        suffix: str = "",
    ) -> None:
        """:param suffix: appended to the PostgreSQL test database names, so that parallel
        sessions (pytest-xdist workers) on one server do not share them."""
        if mode not in MODES:
            raise ValueError(f"dorm test databases: mode {mode!r} is not one of {MODES}")
        if mode == "postgres" and cluster is None:
            raise ValueError("dorm test databases: mode 'postgres' needs a cluster")
        self.mode = mode
        self.directory = directory
        self.cluster = cluster
        self.suffix = f"_{_identifier(suffix)}" if suffix else ""
        #: The ``DATABASES`` the tests run on (set by ``setup()``).
        self.databases: dict[str, dict[str, Any]] = {}
        self._original: dict[str, dict[str, Any]] | None = None
        self._created: list[tuple[dict[str, Any], str]] = []  # PostgreSQL (server, name)
        # Aliases whose database another alias already made (two aliases, one database).
        self._same_as: dict[str, str] = {}

    def __repr__(self) -> str:
        names = ", ".join(f"{a}={d['ENGINE']}:{d['NAME']}" for a, d in self.databases.items())
        return f"<SessionDatabases mode={self.mode!r} {names}>"

    @property
    def vendor(self) -> str:
        """The ENGINE of the ``default`` alias (``"sqlite"`` or ``"postgresql"``)."""
        entry = self.databases.get("default") or next(iter(self.databases.values()))
        return str(entry["ENGINE"])

    # -- the session ---------------------------------------------------------------------

    def setup(self) -> None:
        """Create the test databases, point the settings at them, and make the tables."""
        from dorm.conf import settings
        from dorm.db.connection import reset_connections

        original = dict(settings.DATABASES)  # discovers settings.py on first use
        self._original = original
        source = original or {"default": {"ENGINE": "sqlite", "NAME": "db.sqlite3"}}
        try:
            made: dict[tuple[Any, ...], str] = {}
            for alias, entry in source.items():
                key = _server_key(entry)
                if self.mode == "settings" and key is not None and key in made:
                    self._same_as[alias] = made[key]
                    self.databases[alias] = {**entry, "NAME": self.databases[made[key]]["NAME"]}
                    continue
                self.databases[alias] = self._test_entry(alias, entry)
                if key is not None:
                    made[key] = alias
            settings.DATABASES = self.databases
            self.databases = dict(settings.DATABASES)  # as normalized, defaults filled in
            reset_connections()
            for alias in self.databases:
                if alias not in self._same_as:
                    self._create_tables(alias)
        except BaseException:
            self.teardown()
            raise

    def _test_entry(self, alias: str, entry: dict[str, Any]) -> dict[str, Any]:
        pool = {key: entry[key] for key in _POOL_KEYS if key in entry}
        engine = entry.get("ENGINE")
        if self.mode == "postgres":
            assert self.cluster is not None
            name = f"test_{_identifier(alias)}{self.suffix}"
            self.cluster.create_database(name)
            return {**self.cluster.settings(name), **pool}
        if self.mode == "sqlite" or engine == "sqlite":
            if self.mode == "settings" and _in_memory(str(entry["NAME"])):
                return dict(entry)
            options = dict(entry.get("OPTIONS") or {}) if engine == "sqlite" else {}
            path = self.directory / f"{_identifier(alias)}.sqlite3"
            return {"ENGINE": "sqlite", "NAME": str(path), "OPTIONS": options, **pool}
        if engine == "postgresql":
            name = f"test_{entry['NAME']}{self.suffix}"
            quoted = '"' + name.replace('"', '""') + '"'
            _admin(
                entry, f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)", f"CREATE DATABASE {quoted}"
            )
            self._created.append((entry, quoted))
            return {**entry, "NAME": name}
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}]: dorm's test databases know SQLite and PostgreSQL, not "
            f"ENGINE {engine!r}; run the tests with dorm_database = sqlite or postgres"
        )

    def _create_tables(self, alias: str) -> None:
        from dorm.apps import apps
        from dorm.conf import settings
        from dorm.db.connection import get_connection
        from dorm.migrations.executor import MigrationExecutor
        from dorm.migrations.loader import app_label_of
        from dorm.migrations.schema import SchemaEditor

        connection = get_connection(alias)
        executor = MigrationExecutor(connection)
        executor.migrate(executor.default_targets())
        labels = [app_label_of(app) for app in settings.INSTALLED_APPS]
        models = [
            model
            for label in labels
            if label not in executor.loader.migrated_apps
            for model in apps.all_models.get(label, {}).values()
            if not (model._meta.abstract or model._meta.auto_created) and model._meta.managed
        ]
        if models:
            with SchemaEditor(connection) as editor:  # foreign keys are added at the end
                for model in models:
                    editor.create_model(model)

    def teardown(self) -> None:
        """Close the connections, drop the databases ``setup()`` created on the project's
        server, and give the settings their ``DATABASES`` back."""
        from dorm.conf import settings
        from dorm.db.connection import reset_connections

        reset_connections()
        try:
            while self._created:
                entry, quoted = self._created.pop()
                _admin(entry, f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
        finally:
            if self._original is not None:
                settings.DATABASES = self._original
                self._original = None
            reset_connections()

    # -- each test -------------------------------------------------------------------------

    @contextmanager
    def rolled_back(self) -> Iterator[list[str]]:
        """Run the block inside one ``atomic()`` block per alias and roll them all back.

        Yields a list that collects the writes made on other connections meanwhile (from
        another thread, or through the async API): those are not part of the rollback. If
        there were any, every table is emptied after the rollback, so the next test
        starts clean all the same, and the caller reports them.
        """
        from dorm import signals
        from dorm.db.connection import bridge_local, connections

        outside: list[str] = []
        thread = threading.get_ident()

        def watch(sender: Any, alias: str, sql: str, **kwargs: Any) -> None:
            on_bridge = bridge_local.states is not None
            if (on_bridge or threading.get_ident() != thread) and _is_write(sql):
                where = "the async API" if on_bridge else "another thread"
                outside.append(f"[{alias}, {where}] {sql}")

        uid = ("dorm.test.rolled_back", id(outside))
        signals.pre_query.connect(watch, weak=False, dispatch_uid=uid)
        try:
            with ExitStack() as stack:
                for alias in self.databases:
                    stack.enter_context(_RolledBack(alias, connections))
                yield outside
        finally:
            signals.pre_query.disconnect(dispatch_uid=uid)
            if outside:
                self.flush()  # what the rollback could not undo

    def flush(self, alias: str | None = None) -> None:
        """Delete every row of every table but the migration history (of ``alias``, or
        of every alias), resetting the id sequences, with the foreign keys ignored."""
        from dorm import transaction
        from dorm.db.connection import get_connection

        for name in [alias] if alias is not None else list(self.databases):
            connection = get_connection(name)
            qn = connection.ops.quote_name
            tables = [t for t in connection.table_names() if t != _MIGRATIONS_TABLE]
            if not tables:
                continue
            with transaction.atomic(using=name):
                if connection.vendor == "postgresql":
                    # A connection left idle in a transaction (a thread the test did not
                    # join) holds locks TRUNCATE waits for: fail instead of hanging.
                    connection.execute("SET LOCAL lock_timeout = '10s'")
                    listing = ", ".join(qn(t) for t in tables)
                    connection.execute(f"TRUNCATE {listing} RESTART IDENTITY CASCADE")
                    continue
                connection.execute("PRAGMA defer_foreign_keys = ON")
                for table in tables:
                    connection.execute(f"DELETE FROM {qn(table)}")
                has_sequences = connection.fetchone(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'"
                )
                if has_sequences:
                    connection.execute(
                        "DELETE FROM sqlite_sequence WHERE name <> ?", (_MIGRATIONS_TABLE,)
                    )


class _RolledBack:
    """One alias's ``atomic()`` block, marked for rollback when it ends."""

    def __init__(self, alias: str, connections: Any) -> None:
        from dorm import transaction

        self.alias = alias
        self.connections = connections
        self.atomic = transaction.atomic(using=alias)
        self.depth = 0

    def __enter__(self) -> None:
        state = self.connections[self.alias].state
        if state.blocks:
            raise RuntimeError(
                f"dorm_db: the test starts inside an atomic() block on {self.alias!r} that "
                f"something else opened and did not close"
            )
        self.atomic.__enter__()
        self.depth = len(state.blocks)

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        from dorm import transaction

        state = self.connections[self.alias].state
        leaked = len(state.blocks) - self.depth
        # A block the test entered and never left would take our rollback: close it first.
        while len(state.blocks) > self.depth:
            transaction.set_rollback(True, using=self.alias)
            transaction.Atomic(self.alias).__exit__(None, None, None)
        if not state.blocks:
            return  # the connections were reset under the test: nothing left to end
        transaction.set_rollback(True, using=self.alias)
        self.atomic.__exit__(None, None, None)
        if leaked > 0 and exc is None:
            raise RuntimeError(
                f"dorm_db: the test left {leaked} atomic() block(s) open on {self.alias!r}; "
                f"they were rolled back"
            )
