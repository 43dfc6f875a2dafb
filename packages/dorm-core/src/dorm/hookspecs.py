"""The pluggy hook specifications of dorm: every extension point a plugin can implement.

Plugins implement these with ``dorm.plugins.hookimpl`` and register a module through the
``dorm`` entry-point group. Implementations take only the arguments they need; specs may
gain arguments in later releases but never rename one.

Error policy (docs/plugins.md, "When a hook raises"):

* registration hooks (``dorm_register_*``) run once at startup; an exception aborts the
  startup with ``PluginError`` naming the plugin, and nothing the hook returned is applied;
* setup and signal hooks (``dorm_connection_created`` and the model lifecycle hooks)
  propagate the exception to the caller, exactly like a Django signal receiver: a ``pre_*``
  hook aborts the operation before any SQL runs, a ``post_*`` hook inside ``atomic()``
  rolls the block back;
* observer hooks (queries, transactions, pools) never change the outcome of the operation
  they report: an exception is logged on the ``dorm.plugins`` logger at ERROR, naming the
  plugin and the hook, and the remaining implementations still run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from dorm.cli.command import Command

__all__ = ["OBSERVER_HOOKS", "PROJECT", "DBType", "SQLRenderer", "hookspec", "spec_names"]

PROJECT = "dorm"

hookspec = pluggy.HookspecMarker(PROJECT)

#: Hooks whose exceptions are logged and swallowed (see the module docstring).
OBSERVER_HOOKS = frozenset(
    {
        "dorm_pre_query",
        "dorm_post_query",
        "dorm_transaction_started",
        "dorm_transaction_committed",
        "dorm_transaction_rolled_back",
        "dorm_pool_opened",
        "dorm_pool_warmed",
    }
)

# A renderer of per-vendor SQL: (node, compiler, connection) -> (sql, params).
SQLRenderer = Callable[[Any, Any, Any], tuple[str, list[object]]]
# A column type for one vendor: a literal type or a function of (field, connection).
DBType = str | Callable[[Any, Any], str]


# ---------------------------------------------------------------------------------------
# Startup: CLI
# ---------------------------------------------------------------------------------------


@hookspec
def dorm_register_commands() -> list[type[Command]]:
    """Return command classes to add under the ``dorm`` CLI.

    Called once per CLI start, on the main thread, before arguments are parsed. Core's own
    commands register through this hook too. The lists of every plugin are concatenated;
    a command name already taken by core or another plugin raises PluginConflictError
    naming both owners.
    """
    raise NotImplementedError


# ---------------------------------------------------------------------------------------
# Startup: schema and SQL (compiler extensions)
# ---------------------------------------------------------------------------------------


@hookspec
def dorm_register_lookups() -> list[tuple[type, type]]:
    """Return ``(field_class, lookup_class)`` pairs to make ``field__<lookup_name>`` work.

    Called once, on first use of ``dorm.plugins.extensions()``, on the calling thread.
    A lookup class carries ``lookup_name``; it applies to the field class and its
    subclasses. Two owners registering the same name on the same field class raise
    PluginConflictError naming both.
    """
    raise NotImplementedError


@hookspec
def dorm_register_transforms() -> list[tuple[type, type]]:
    """Return ``(field_class, transform_class)`` pairs (``field__<lookup_name>__...``).

    Called once, like ``dorm_register_lookups``, and combined the same way: a transform
    changes the left-hand side before a further lookup applies.
    """
    raise NotImplementedError


@hookspec
def dorm_register_functions() -> list[type]:
    """Return SQL function (expression) classes to register by their class name.

    Called once, like ``dorm_register_lookups``. The combined mapping is
    ``extensions().functions``; a name registered by two owners raises
    PluginConflictError naming both.
    """
    raise NotImplementedError


@hookspec
def dorm_register_vendor_sql() -> list[tuple[type, str, SQLRenderer]]:
    """Return ``(node_class, vendor, renderer)`` triples that override SQL on one vendor.

    Called once, like ``dorm_register_lookups``. The compiler tries this registry first,
    then the node's ``as_<vendor>`` method, then ``as_sql``. ``renderer(node, compiler,
    connection)`` returns ``(sql, params)``. The same (node class, vendor) from two owners
    raises PluginConflictError naming both.
    """
    raise NotImplementedError


@hookspec
def dorm_register_field_types() -> list[tuple[type, str, DBType]]:
    """Return ``(field_class, vendor, db_type)`` triples giving a column type per vendor.

    Called once, like ``dorm_register_lookups``. ``db_type`` is a string such as
    ``"vector(3)"`` or a function ``(field, connection) -> str``. Entries here win over
    the field class's own mapping; the same (field class, vendor) from two owners raises
    PluginConflictError naming both.
    """
    raise NotImplementedError


# ---------------------------------------------------------------------------------------
# Runtime events: connections and pools
# ---------------------------------------------------------------------------------------


@hookspec
def dorm_connection_created(alias: str, vendor: str, connection: Any, is_async: bool) -> None:
    """Notify that a new DB-API (or asyncpg) connection was opened for ``alias``.

    Fires once per physical connection, on the thread (or event loop) that opened it,
    before the connection serves any query: the place to register type adapters. An
    exception propagates and the connection is not used.
    """


@hookspec
def dorm_pool_opened(alias: str, vendor: str, min_size: int, max_size: int, is_async: bool) -> None:
    """Notify that the connection pool of ``alias`` was created.

    Fires once per pool, on the thread or event loop that created it. Observer hook:
    exceptions are logged, never raised.
    """


@hookspec
def dorm_pool_warmed(alias: str, seconds: float, size: int, is_async: bool) -> None:
    """Notify that ``warmup_pool`` / ``awarmup_pool`` opened ``size`` connections in ``seconds``.

    Fires once per warm-up call, after the last connection is open, on the caller's thread
    or event loop. Observer hook: exceptions are logged, never raised.
    """


# ---------------------------------------------------------------------------------------
# Runtime events: queries
# ---------------------------------------------------------------------------------------


@hookspec
def dorm_pre_query(alias: str, vendor: str, sql: str, params: Sequence[object]) -> None:
    """Notify that ``sql`` is about to be sent to ``alias``.

    Fires for every statement, on the thread or event loop that runs it. ``params`` has
    sensitive values already replaced by ``'***'``. Observer hook: exceptions are logged,
    never raised, and the query runs.
    """


@hookspec
def dorm_post_query(
    alias: str,
    vendor: str,
    sql: str,
    params: Sequence[object],
    duration: float,
    rowcount: int,
    error: BaseException | None,
) -> None:
    """Notify that a statement finished, successfully or not.

    Fires once per ``dorm_pre_query``, on the same thread or loop. ``duration`` is in
    seconds; ``rowcount`` is -1 where the driver does not know it; ``error`` is the
    exception the driver raised (already re-raised to the caller after the hook). Observer
    hook: exceptions are logged, never raised.
    """


# ---------------------------------------------------------------------------------------
# Runtime events: transactions
# ---------------------------------------------------------------------------------------


@hookspec
def dorm_transaction_started(alias: str, savepoint: bool, durable: bool) -> None:
    """Notify that an ``atomic()`` block was entered on ``alias``.

    ``savepoint`` is True for a nested block. Fires on the thread or loop that owns the
    connection, after BEGIN / SAVEPOINT succeeded. Observer hook: exceptions are logged.
    """


@hookspec
def dorm_transaction_committed(alias: str, savepoint: bool, duration: float) -> None:
    """Notify that an ``atomic()`` block committed (or released its savepoint).

    ``duration`` is the block's wall time in seconds. Fires after COMMIT / RELEASE
    succeeded and before ``on_commit`` callbacks run. Observer hook: exceptions are logged.
    """


@hookspec
def dorm_transaction_rolled_back(
    alias: str, savepoint: bool, duration: float, error: BaseException | None
) -> None:
    """Notify that an ``atomic()`` block rolled back (to its savepoint, if nested).

    ``error`` is the exception that left the block, or None for ``set_rollback(True)``.
    Fires after ROLLBACK succeeded. Observer hook: exceptions are logged.
    """


# ---------------------------------------------------------------------------------------
# Runtime events: model lifecycle (the hooks behind ``dorm.signals``)
# ---------------------------------------------------------------------------------------


@hookspec
def dorm_class_prepared(sender: type) -> None:
    """Notify that model class ``sender`` was created and its ``_meta`` is complete.

    Fires once per model class, at import time, on the importing thread. The signal
    ``dorm.signals.class_prepared`` sends the same event. An exception propagates to the
    import.
    """


@hookspec
def dorm_pre_save(
    sender: type, instance: Any, raw: bool, using: str, update_fields: frozenset[str] | None
) -> None:
    """Notify that ``instance`` is about to be saved; mirrors ``signals.pre_save``.

    Fires on the saving thread (async code: the event loop) before any SQL. An exception
    propagates and nothing is written.
    """


@hookspec
def dorm_post_save(
    sender: type,
    instance: Any,
    created: bool,
    raw: bool,
    using: str,
    update_fields: frozenset[str] | None,
) -> None:
    """Notify that ``instance`` was saved; mirrors ``signals.post_save``.

    Fires on the saving thread after the INSERT or UPDATE, inside the caller's
    transaction if there is one. An exception propagates: inside ``atomic()`` the block
    rolls back; in autocommit mode the row stays written.
    """


@hookspec
def dorm_pre_delete(sender: type, instance: Any, using: str, origin: Any) -> None:
    """Notify that ``instance`` is about to be deleted; mirrors ``signals.pre_delete``.

    Fires once per collected object (cascades included) before any DELETE; ``origin`` is
    the instance or queryset whose deletion started the cascade. An exception propagates
    and nothing is deleted.
    """


@hookspec
def dorm_post_delete(sender: type, instance: Any, using: str, origin: Any) -> None:
    """Notify that ``instance`` was deleted; mirrors ``signals.post_delete``.

    Fires once per deleted object, inside the deletion's transaction. An exception
    propagates and the deletion's transaction rolls back.
    """


@hookspec
def dorm_m2m_changed(
    sender: type,
    instance: Any,
    action: str,
    reverse: bool,
    model: type,
    pk_set: set[Any] | None,
    using: str,
) -> None:
    """Notify a many-to-many change; mirrors ``signals.m2m_changed``.

    ``action`` is one of ``pre_add``, ``post_add``, ``pre_remove``, ``post_remove``,
    ``pre_clear``, ``post_clear``; ``sender`` is the through model. Fires before and
    after each ``add`` / ``remove`` / ``set`` / ``clear``, inside its transaction. An exception in a
    ``pre_*`` action aborts the change before SQL; in a ``post_*`` action it propagates.
    """


@hookspec
def dorm_bulk_created(sender: type, objs: Sequence[Any], using: str) -> None:
    """Notify that ``bulk_create`` (or ``upsert``) wrote ``objs``; mirrors ``signals.bulk_created``.

    Fires once per call, after the last batch, inside the call's transaction. Per-object
    ``pre_save`` / ``post_save`` do not fire for bulk operations (as in Django); this hook
    is how a plugin sees them. An exception propagates and the call's transaction rolls back.
    """


@hookspec
def dorm_bulk_updated(sender: type, objs: Sequence[Any], fields: Sequence[str], using: str) -> None:
    """Notify that ``bulk_update`` wrote ``fields`` of ``objs``; mirrors ``signals.bulk_updated``.

    Fires once per call, inside the call's transaction. An exception propagates and the
    call's transaction rolls back.
    """


@hookspec
def dorm_queryset_updated(
    sender: type, queryset: Any, values: dict[str, Any], rows: int, using: str
) -> None:
    """Notify that ``QuerySet.update(**values)`` changed ``rows`` rows.

    Mirrors ``signals.queryset_updated``. Fires once per call, inside the update's
    transaction. ``queryset`` is the filtered
    queryset (re-evaluating it reads the updated rows). An exception propagates and the
    update's transaction rolls back.
    """


@hookspec
def dorm_queryset_deleted(sender: type, queryset: Any, deleted: dict[str, int], using: str) -> None:
    """Notify that ``QuerySet.delete()`` finished; mirrors ``signals.queryset_deleted``.

    ``deleted`` maps ``app_label.Model`` to the number of rows removed, cascades included.
    Fires once per call, inside the deletion's transaction. An exception propagates and
    the deletion's transaction rolls back.
    """


def spec_names() -> Iterable[str]:
    """Return the name of every hookspec in this module, in definition order."""
    return [name for name in globals() if name.startswith("dorm_")]
