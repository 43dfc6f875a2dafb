"""The pluggy hook specifications of dorm: every extension point a plugin can implement.

Plugins implement these with ``dorm.plugins.hookimpl`` and register a module through the
``dorm`` entry-point group. Implementations take only the arguments they need; specs may
gain arguments in later releases but never rename one.

Error policy (docs/plugins.md, "When a hook raises"):

* registration hooks (``dorm_register_*``) run once at startup; an exception aborts the
  startup with ``PluginError`` naming the plugin, and nothing the hook returned is applied;
* setup and signal hooks (``dorm_connection_created``, the ``dorm_schema_*`` hooks and
  the model lifecycle hooks) propagate the exception to the caller, exactly like a Django
  signal receiver: a ``pre_*`` hook aborts the operation before any SQL runs, a ``post_*``
  hook (or a schema hook) inside ``atomic()`` rolls the block back;
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

__all__ = [
    "OBSERVER_HOOKS",
    "PROJECT",
    "DBType",
    "SQLRenderer",
    "ValueSchema",
    "hookspec",
    "spec_names",
]

PROJECT = "dorm"

hookspec = pluggy.HookspecMarker(PROJECT)

#: Hooks whose exceptions are logged and swallowed (see the module docstring).
OBSERVER_HOOKS = frozenset(
    {
        "dorm_pre_query",
        "dorm_post_query",
        "dorm_query_failed",
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
# How a field's values look outside the database: (field) -> description dict.
ValueSchema = Callable[[Any], dict[str, Any]]


# ---------------------------------------------------------------------------------------
# Startup: CLI
# ---------------------------------------------------------------------------------------


@hookspec
def dorm_register_commands() -> list[type[Command]]:
    """Return command classes to add under the ``dorm`` CLI.

    Core's own commands register through this hook too.

    Fires: once per CLI start, before the arguments are parsed.
    Thread: the main thread.
    Returns: a list of ``dorm.cli.Command`` subclasses; the lists are concatenated, and a
    name already taken by core or another plugin raises PluginConflictError naming both.
    On error: ``dorm`` prints one line naming the plugin and exits with 1.
    """
    raise NotImplementedError


# ---------------------------------------------------------------------------------------
# Startup: backends
# ---------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def dorm_backend_for(vendor: str) -> type | None:
    """Return the database wrapper class for ``DATABASES[...]["ENGINE"] == vendor``, or None.

    Core's SQLite and PostgreSQL backends answer through this hook too (last, so a
    plugin may replace them). The first non-None answer wins.

    Fires: once per configured alias, when it is first used.
    Thread: the thread that first uses the alias.
    Returns: a ``dorm.db.backends.base.BaseDatabaseWrapper`` subclass, or None for a
    vendor the plugin does not handle; no answer at all raises ImproperlyConfigured
    naming the alias and the engine.
    On error: propagates to the code that asked for the connection.
    """


# ---------------------------------------------------------------------------------------
# Startup: schema and SQL (compiler extensions)
# ---------------------------------------------------------------------------------------


@hookspec
def dorm_register_lookups() -> list[tuple[type, type]]:
    """Return lookups that make ``<field>__<lookup_name>=value`` work in filters.

    A lookup class carries ``lookup_name`` and applies to the field class it is paired
    with and to that class's subclasses.

    Fires: once, when ``dorm.plugins.extensions()`` is first needed, and again after a
    plugin is registered or unregistered at runtime.
    Thread: whichever thread first needs the registry (under a lock).
    Returns: a list of ``(field_class, lookup_class)`` pairs; the same name on the same
    field class from two owners raises PluginConflictError naming both.
    On error: PluginError naming the plugin; no registration of any plugin is applied.
    """
    raise NotImplementedError


@hookspec
def dorm_register_transforms() -> list[tuple[type, type]]:
    """Return transforms, which change the left-hand side before a further lookup applies.

    ``<field>__<transform>__<lookup>=value``, for example ``name__lower__exact="ada"``.

    Fires: as ``dorm_register_lookups``.
    Thread: as ``dorm_register_lookups``.
    Returns: a list of ``(field_class, transform_class)`` pairs, combined and checked for
    collisions as lookups are.
    On error: PluginError naming the plugin; no registration of any plugin is applied.
    """
    raise NotImplementedError


@hookspec
def dorm_register_functions() -> list[type]:
    """Return SQL function (expression) classes to register under their class name.

    Fires: as ``dorm_register_lookups``.
    Thread: as ``dorm_register_lookups``.
    Returns: a list of classes; the combined mapping is ``extensions().functions`` and a
    name registered by two owners raises PluginConflictError naming both.
    On error: PluginError naming the plugin; no registration of any plugin is applied.
    """
    raise NotImplementedError


@hookspec
def dorm_register_vendor_sql() -> list[tuple[type, str, SQLRenderer]]:
    """Return per-vendor SQL overrides for expression or lookup node classes.

    The compiler tries this registry first, then the node's ``as_<vendor>`` method, then
    ``as_sql``; ``renderer(node, compiler, connection)`` returns ``(sql, params)``. This is
    how a plugin changes a core node on one vendor without touching its class.

    Fires: as ``dorm_register_lookups``.
    Thread: as ``dorm_register_lookups``.
    Returns: a list of ``(node_class, vendor, renderer)`` triples; the same (node class,
    vendor) from two owners raises PluginConflictError naming both.
    On error: PluginError naming the plugin; no registration of any plugin is applied.
    """
    raise NotImplementedError


@hookspec
def dorm_register_field_types() -> list[tuple[type, str, DBType]]:
    """Return column types of field classes per vendor.

    ``db_type`` is a string such as ``"BLOB"`` or a function ``(field, connection) ->
    str`` such as ``lambda f, c: f"vector({f.dimensions})"``. Entries here win over the
    field class's own mapping.

    Fires: as ``dorm_register_lookups``.
    Thread: as ``dorm_register_lookups``.
    Returns: a list of ``(field_class, vendor, db_type)`` triples; the same (field class,
    vendor) from two owners raises PluginConflictError naming both.
    On error: PluginError naming the plugin; no registration of any plugin is applied.
    """
    raise NotImplementedError


@hookspec
def dorm_register_value_schemas() -> list[tuple[type, ValueSchema]]:
    """Return how the values of field classes look outside the database.

    Serializers and schema exporters (MessagePack, JSON, JSON Schema, OpenAPI, Avro) read
    this to carry a plugin field's values and describe them. ``describe(field)`` returns
    a dict: ``"type"`` is the carrier, one of ``"string"``, ``"integer"``, ``"number"``,
    ``"decimal"``, ``"boolean"``, ``"json"``; optional ``"max_length"``, ``"max_digits"``
    and ``"decimal_places"`` bound it; optional ``"json_schema"`` holds extra JSON Schema
    2020-12 keywords (``pattern``, ``format``, ``enum``, ``description``, ...). A value
    travels as ``field.get_db_prep_value(value)`` coerced to the carrier and comes back
    through ``field.to_python(carried)``. A subclass uses its nearest registered base.

    Fires: once per consumer's registry build, on first need and after a plugin is
    registered or unregistered.
    Thread: whichever thread first needs the registry.
    Returns: a list of ``(field_class, describe)`` pairs; the same field class from two
    owners raises PluginConflictError naming both.
    On error: PluginError naming the plugin; no registration of any plugin is applied.
    """
    raise NotImplementedError


# ---------------------------------------------------------------------------------------
# Runtime events: connections and pools
# ---------------------------------------------------------------------------------------


@hookspec
def dorm_connection_created(alias: str, vendor: str, connection: Any, is_async: bool) -> None:
    """Set up a new physical connection of ``alias``: the place to register type adapters.

    ``connection`` is the driver's object (sqlite3, psycopg or asyncpg connection).

    Fires: once per physical connection, before it serves any query.
    Thread: the thread, or event loop, that opened the connection.
    Returns: None (ignored).
    On error: propagates to the code that asked for the connection; the connection is
    closed and not used.
    """


@hookspec
def dorm_pool_opened(alias: str, vendor: str, min_size: int, max_size: int, is_async: bool) -> None:
    """Report that the connection pool of ``alias`` was created.

    Fires: once per pool, when it is created.
    Thread: the thread, or event loop, that created it.
    Returns: None (ignored).
    On error: logged on ``dorm.plugins`` (observer hook); the pool is used as usual.
    """


@hookspec
def dorm_pool_warmed(alias: str, seconds: float, size: int, is_async: bool) -> None:
    """Report that ``warmup_pool`` / ``awarmup_pool`` opened ``size`` connections in ``seconds``.

    Fires: once per warm-up call, after its last connection is open.
    Thread: the caller's thread, or event loop.
    Returns: None (ignored).
    On error: logged on ``dorm.plugins`` (observer hook); the warm-up result stands.
    """


# ---------------------------------------------------------------------------------------
# Runtime events: schema editor
# ---------------------------------------------------------------------------------------


@hookspec
def dorm_schema_model_created(schema_editor: Any, model: type) -> None:
    """Report that ``SchemaEditor.create_model`` created the table of ``model``.

    The place to add database objects that belong with a table (triggers, functions):
    run them through ``schema_editor.execute(sql)`` so that ``collect_sql`` editors
    (``dorm sqlmigrate``) show them and they share the editor's transaction.

    Fires: once per created table (automatic many-to-many tables included), after its
    CREATE TABLE and index statements, inside the editor's transaction.
    Thread: the thread that runs the schema editor.
    Returns: None (ignored).
    On error: propagates to the caller of ``create_model``; inside the editor's
    transaction the whole block rolls back.
    """


@hookspec
def dorm_schema_model_altered(schema_editor: Any, model: type) -> None:
    """Report that the schema editor changed the table of ``model``.

    Fired by ``add_field``, ``remove_field``, ``alter_field``, ``rename_field``,
    ``add_constraint``, ``remove_constraint`` and ``alter_unique_together``, after the
    change. ``model`` is the class the editor was given, which describes the table as it
    stood *before* the change; read the database for the new shape. On SQLite the change
    may have rebuilt the table, which drops its triggers: re-create them here.
    ``alter_db_table`` (``AlterModelTable``, ``RenameModel``) fires it too, with the model
    as it is *after* the rename: ``model._meta.db_table`` is the new name, and objects a
    plugin named after the old one are still there to rename or replace.

    Fires: once per altering call, after its last statement, inside the editor's
    transaction.
    Thread: the thread that runs the schema editor.
    Returns: None (ignored).
    On error: propagates to the caller of the altering method; inside the editor's
    transaction the whole block rolls back.
    """


@hookspec
def dorm_schema_model_deleted(schema_editor: Any, model: type) -> None:
    """Report that ``SchemaEditor.delete_model`` dropped the table of ``model``.

    The place to drop what a ``dorm_schema_model_created`` implementation added on
    other tables (a trigger on table A that writes into the dropped table B).

    Fires: once per dropped table, after its DROP TABLE, inside the editor's transaction.
    Thread: the thread that runs the schema editor.
    Returns: None (ignored).
    On error: propagates to the caller of ``delete_model``; inside the editor's
    transaction the whole block rolls back.
    """


# ---------------------------------------------------------------------------------------
# Runtime events: queries
# ---------------------------------------------------------------------------------------


@hookspec
def dorm_pre_query(alias: str, vendor: str, sql: str, params: Sequence[object]) -> None:
    """Report that ``sql`` is about to be sent to ``alias``.

    ``params`` has the values of sensitive columns already replaced by ``'***'``.

    Fires: for every statement dorm sends, just before it is sent.
    Thread: the thread, or event loop, that runs the statement.
    Returns: None (ignored).
    On error: logged on ``dorm.plugins`` (observer hook); the statement runs.
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
    """Report that a statement finished, successfully or not.

    ``duration`` is in seconds; ``rowcount`` is -1 where the driver does not know it;
    ``error`` is the exception the driver raised, which reaches the caller after the hook.

    Fires: once per ``dorm_pre_query``, when the statement has finished.
    Thread: the same thread, or event loop, as ``dorm_pre_query``.
    Returns: None (ignored).
    On error: logged on ``dorm.plugins`` (observer hook); the statement's result stands.
    """


@hookspec
def dorm_query_failed(
    alias: str, vendor: str, sql: str, error: BaseException, sqlstate: str | None
) -> None:
    """Report that a statement sent to ``alias`` failed.

    ``error`` is the dorm exception the caller gets (sensitive values masked);
    ``sqlstate`` is the server's SQLSTATE code, or None when the driver has none (a lost
    connection, SQLite). Unlike ``dorm_post_query`` this costs nothing on success, so a
    plugin that only watches failures (a router marking a server stale) leaves the
    statement path untouched.

    Fires: once per failed statement (a retried one fails twice), before the error
    reaches the caller; never for a statement that succeeds.
    Thread: the thread, or event loop, that ran the statement.
    Returns: None (ignored).
    On error: logged on ``dorm.plugins`` (observer hook); the caller gets the statement's
    error.
    """


# ---------------------------------------------------------------------------------------
# Runtime events: transactions
# ---------------------------------------------------------------------------------------


@hookspec
def dorm_transaction_started(alias: str, savepoint: bool, durable: bool) -> None:
    """Report that an ``atomic()`` block was entered on ``alias``.

    ``savepoint`` is True for a nested block; ``durable`` echoes ``atomic(durable=...)``.

    Fires: after BEGIN (or SAVEPOINT) succeeded.
    Thread: the thread, or event loop, that owns the connection.
    Returns: None (ignored).
    On error: logged on ``dorm.plugins`` (observer hook); the block runs.
    """


@hookspec
def dorm_transaction_committed(alias: str, savepoint: bool, duration: float) -> None:
    """Report that an ``atomic()`` block committed, or released its savepoint.

    ``duration`` is the block's wall time in seconds.

    Fires: after COMMIT (or RELEASE SAVEPOINT) succeeded, before ``on_commit`` callbacks.
    Thread: the thread, or event loop, that owns the connection.
    Returns: None (ignored).
    On error: logged on ``dorm.plugins`` (observer hook); the commit stands.
    """


@hookspec
def dorm_transaction_rolled_back(
    alias: str, savepoint: bool, duration: float, error: BaseException | None
) -> None:
    """Report that an ``atomic()`` block rolled back (to its savepoint, if nested).

    ``error`` is the exception that left the block, or None for ``set_rollback(True)``.

    Fires: after ROLLBACK (or ROLLBACK TO SAVEPOINT) succeeded.
    Thread: the thread, or event loop, that owns the connection.
    Returns: None (ignored).
    On error: logged on ``dorm.plugins`` (observer hook); the block's exception, if any,
    is the one the caller sees.
    """


# ---------------------------------------------------------------------------------------
# Runtime events: model lifecycle (the hooks behind ``dorm.signals``)
# ---------------------------------------------------------------------------------------


@hookspec
def dorm_class_prepared(sender: type) -> None:
    """Report that model class ``sender`` was created and its ``_meta`` is complete.

    Mirrors ``dorm.signals.class_prepared``.

    Fires: once per model class, when its class statement runs.
    Thread: the importing thread.
    Returns: None (ignored).
    On error: propagates to the import of the model's module.
    """


@hookspec
def dorm_pre_save(
    sender: type, instance: Any, raw: bool, using: str, update_fields: frozenset[str] | None
) -> None:
    """Report that ``instance`` is about to be saved. Mirrors ``dorm.signals.pre_save``.

    Fires: in ``save()`` / ``asave()``, before any SQL.
    Thread: the saving thread, or event loop.
    Returns: None (ignored).
    On error: propagates to the caller of ``save()``; nothing is written.
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
    """Report that ``instance`` was saved. Mirrors ``dorm.signals.post_save``.

    Fires: in ``save()`` / ``asave()``, after the INSERT or UPDATE, inside the caller's
    transaction if there is one.
    Thread: the saving thread, or event loop.
    Returns: None (ignored).
    On error: propagates to the caller of ``save()``: inside ``atomic()`` the block rolls
    back; in autocommit mode the row stays written.
    """


@hookspec
def dorm_pre_delete(sender: type, instance: Any, using: str, origin: Any) -> None:
    """Report that ``instance`` is about to be deleted. Mirrors ``dorm.signals.pre_delete``.

    ``origin`` is the instance or queryset whose deletion started the cascade.

    Fires: once per collected object, cascades included, before any DELETE.
    Thread: the deleting thread, or event loop.
    Returns: None (ignored).
    On error: propagates to the caller of ``delete()``; nothing is deleted.
    """


@hookspec
def dorm_post_delete(sender: type, instance: Any, using: str, origin: Any) -> None:
    """Report that ``instance`` was deleted. Mirrors ``dorm.signals.post_delete``.

    Fires: once per deleted object, inside the deletion's transaction.
    Thread: the deleting thread, or event loop.
    Returns: None (ignored).
    On error: propagates to the caller of ``delete()``; the deletion rolls back.
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
    """Report a many-to-many change. Mirrors ``dorm.signals.m2m_changed``.

    ``action`` is one of ``pre_add``, ``post_add``, ``pre_remove``, ``post_remove``,
    ``pre_clear``, ``post_clear``; ``sender`` is the through model.

    Fires: before and after each ``add`` / ``remove`` / ``set`` / ``clear``, inside its
    transaction.
    Thread: the calling thread, or event loop.
    Returns: None (ignored).
    On error: propagates; a ``pre_*`` action aborts the change before any SQL, a
    ``post_*`` action rolls it back.
    """


@hookspec
def dorm_bulk_created(sender: type, objs: Sequence[Any], using: str) -> None:
    """Report that ``bulk_create`` (or ``upsert``) wrote ``objs``.

    Mirrors ``dorm.signals.bulk_created``. Per-object ``pre_save`` / ``post_save`` do not
    fire for bulk operations (as in Django): this hook is how a plugin sees them.

    Fires: once per call, after its last batch, inside the call's transaction.
    Thread: the calling thread, or event loop.
    Returns: None (ignored).
    On error: propagates; the call's transaction rolls back.
    """


@hookspec
def dorm_bulk_updated(sender: type, objs: Sequence[Any], fields: Sequence[str], using: str) -> None:
    """Report that ``bulk_update`` wrote ``fields`` of ``objs``.

    Mirrors ``dorm.signals.bulk_updated``.

    Fires: once per call, after its last batch, inside the call's transaction.
    Thread: the calling thread, or event loop.
    Returns: None (ignored).
    On error: propagates; the call's transaction rolls back.
    """


@hookspec
def dorm_queryset_updated(
    sender: type, queryset: Any, values: dict[str, Any], rows: int, using: str
) -> None:
    """Report that ``QuerySet.update(**values)`` changed ``rows`` rows.

    Mirrors ``dorm.signals.queryset_updated``. ``queryset`` is the filtered queryset;
    evaluating it again reads the updated rows.

    Fires: once per call, after the UPDATE, inside its transaction.
    Thread: the calling thread, or event loop.
    Returns: None (ignored).
    On error: propagates; the update's transaction rolls back.
    """


@hookspec
def dorm_queryset_deleted(sender: type, queryset: Any, deleted: dict[str, int], using: str) -> None:
    """Report that ``QuerySet.delete()`` finished.

    Mirrors ``dorm.signals.queryset_deleted``. ``deleted`` maps ``app_label.Model`` to
    the number of rows removed, cascades included.

    Fires: once per call, after the last DELETE, inside the deletion's transaction.
    Thread: the calling thread, or event loop.
    Returns: None (ignored).
    On error: propagates; the deletion's transaction rolls back.
    """


def spec_names() -> Iterable[str]:
    """Return the name of every hookspec in this module, in definition order."""
    return [name for name in globals() if name.startswith("dorm_")]
