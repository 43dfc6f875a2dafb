"""One ``test_hook_<name>`` per hookspec: how each hook is reached and what its impls receive.

Registration hooks are exercised through ``dorm.plugins.extensions()`` / the CLI, signal
hooks through ``dorm.signals``, observer hooks through ``dorm.plugins.notify`` (the one
path the ORM uses to report queries, transactions and pools).
"""

from __future__ import annotations

import argparse
import inspect
from typing import Any

import pytest

from dorm import hookspecs, plugins, signals
from dorm.cli import Command, main
from dorm.exceptions import PluginConflictError, PluginError
from dorm.plugins import hookimpl

pytestmark = pytest.mark.usefixtures("fresh_manager")


def _recorder(hook_name: str) -> list[dict[str, Any]]:
    """Register a plugin whose impl of ``hook_name`` takes every spec argument and records it."""
    spec = getattr(hookspecs, hook_name)
    names = list(inspect.signature(spec).parameters)
    calls: list[dict[str, Any]] = []
    namespace: dict[str, Any] = {"calls": calls}
    exec(  # builds an impl with exactly the spec's argument names
        f"def {hook_name}({', '.join(names)}):\n"
        f"    calls.append(dict({', '.join(f'{n}={n}' for n in names)}))\n",
        namespace,
    )
    plugin = type("Recorder", (), {hook_name: staticmethod(hookimpl(namespace[hook_name]))})
    plugins.register(plugin, name=f"recorder-{hook_name}")
    return calls


def _send_signal(signal: signals.Signal, **kwargs: Any) -> None:
    """Send ``signal`` and check that a receiver and a plugin impl both saw ``kwargs``."""
    assert signal.hook_name is not None
    received: list[dict[str, Any]] = []

    def on_event(signal: signals.Signal, **got: Any) -> None:
        received.append(got)

    signal.connect(on_event, weak=False)
    try:
        calls = _recorder(signal.hook_name)
        signal.send(**kwargs)
    finally:
        signal.disconnect(on_event)
    assert received == [kwargs]
    assert calls == [kwargs]


def _observe(hook_name: str, **kwargs: Any) -> None:
    calls = _recorder(hook_name)
    plugins.notify(hook_name, **kwargs)
    assert calls == [kwargs]
    assert hook_name in hookspecs.OBSERVER_HOOKS


class Article:
    pass


class Tag:
    pass


# --- startup: CLI -----------------------------------------------------------------------


def test_hook_dorm_register_commands(capsys: pytest.CaptureFixture[str]) -> None:
    class Greet(Command):
        name = "greet"
        help = "print a greeting"

        def add_arguments(self, parser: argparse.ArgumentParser) -> None:
            parser.add_argument("who")

        def handle(self, args: argparse.Namespace) -> int:
            print(f"hi {args.who}")
            return 3

    class Shop:
        @hookimpl
        def dorm_register_commands(self) -> list[type[Command]]:
            return [Greet]

    plugins.register(Shop(), name="shop")
    assert main(["greet", "Ada"]) == 3
    assert capsys.readouterr().out == "hi Ada\n"

    class Clash(Command):
        name = "plugins"  # core's own command

    class Other:
        @hookimpl
        def dorm_register_commands(self) -> list[type[Command]]:
            return [Clash]

    plugins.register(Other(), name="other")
    assert main(["greet", "Ada"]) == 1
    err = capsys.readouterr().err
    assert "command 'plugins' is registered by both" in err
    assert "'other'" in err and "'dorm.cli.builtin'" in err


# --- startup: compiler extensions -------------------------------------------------------


class Field:
    pass


class CharField(Field):
    pass


class EmailField(CharField):
    pass


class Lookup:
    lookup_name = ""


def test_hook_dorm_register_lookups() -> None:
    class IContains(Lookup):
        lookup_name = "icontains"

    class Search(Lookup):
        lookup_name = "search"

    class Core:
        @hookimpl
        def dorm_register_lookups(self) -> list[tuple[type, type]]:
            return [(Field, IContains)]

    class FullText:
        @hookimpl
        def dorm_register_lookups(self) -> list[tuple[type, type]]:
            return [(CharField, Search)]

    plugins.register(Core(), name="core-lookups")
    plugins.register(FullText(), name="fulltext")
    ext = plugins.extensions()
    assert ext.lookup(EmailField, "search") is Search  # found through the MRO
    assert ext.lookup(EmailField, "icontains") is IContains
    assert ext.lookup(Field, "search") is None
    assert ext.lookup_names(EmailField) == {"icontains", "search"}

    class OtherSearch(Lookup):
        lookup_name = "search"

    class Rival:
        @hookimpl
        def dorm_register_lookups(self) -> list[tuple[type, type]]:
            return [(CharField, OtherSearch)]

    plugins.register(Rival(), name="rival")
    with pytest.raises(PluginConflictError) as err:
        plugins.extensions()
    assert "lookup 'search' on" in str(err.value) and "CharField" in str(err.value)
    assert "'fulltext'" in str(err.value) and "'rival'" in str(err.value)
    plugins.unregister("rival")
    assert plugins.extensions().lookup(CharField, "search") is Search

    class BadName(Lookup):
        lookup_name = "has__dunder"

    class Bad:
        @hookimpl
        def dorm_register_lookups(self) -> list[tuple[type, type]]:
            return [(CharField, BadName)]

    plugins.register(Bad(), name="bad")
    with pytest.raises(PluginError, match="lookup_name must be a lower-case identifier"):
        plugins.extensions()


def test_hook_dorm_register_transforms() -> None:
    class Lower(Lookup):
        lookup_name = "lower"

    class Text:
        @hookimpl
        def dorm_register_transforms(self) -> list[tuple[type, type]]:
            return [(CharField, Lower)]

    plugins.register(Text(), name="text")
    ext = plugins.extensions()
    assert ext.transform(EmailField, "lower") is Lower
    assert ext.lookup(EmailField, "lower") is None  # a transform is not a lookup
    assert "lower" in ext.lookup_names(EmailField)


def test_hook_dorm_register_functions() -> None:
    class Greatest:
        pass

    class Funcs:
        @hookimpl
        def dorm_register_functions(self) -> list[type]:
            return [Greatest]

    class Dup:
        @hookimpl
        def dorm_register_functions(self) -> list[type]:
            return [type("Greatest", (), {})]

    plugins.register(Funcs(), name="funcs")
    functions = plugins.extensions().functions
    assert functions["Greatest"] is Greatest
    assert functions["Coalesce"].__module__ == "dorm.functions"  # core registers the same way
    plugins.register(Dup(), name="dup")
    with pytest.raises(PluginConflictError, match="function 'Greatest' is registered by both"):
        plugins.extensions()


def test_hook_dorm_register_vendor_sql() -> None:
    class Concat:
        pass

    class ConcatPair(Concat):
        pass

    def pg_concat(node: object, compiler: object, connection: object) -> tuple[str, list[object]]:
        return "CONCAT(%s, %s)", []

    class Pg:
        @hookimpl
        def dorm_register_vendor_sql(self) -> list[tuple[type, str, object]]:
            return [(Concat, "postgresql", pg_concat)]

    plugins.register(Pg(), name="pg-sql")
    ext = plugins.extensions()
    assert ext.renderer(ConcatPair, "postgresql") is pg_concat
    assert ext.renderer(ConcatPair, "sqlite") is None

    class BadVendor:
        @hookimpl
        def dorm_register_vendor_sql(self) -> list[tuple[type, str, object]]:
            return [(Concat, "Postgre SQL", pg_concat)]

    plugins.register(BadVendor(), name="bad-vendor")
    with pytest.raises(PluginError, match="vendor name such as 'postgresql'.*'Postgre SQL'"):
        plugins.extensions()


def test_hook_dorm_register_field_types() -> None:
    class VectorField(Field):
        dimensions = 3

    def vector_type(field: Any, connection: object) -> str:
        return f"vector({field.dimensions})"

    class Vec:
        @hookimpl
        def dorm_register_field_types(self) -> list[tuple[type, str, object]]:
            return [(VectorField, "postgresql", vector_type), (VectorField, "sqlite", "BLOB")]

    plugins.register(Vec(), name="vec")
    ext = plugins.extensions()
    assert ext.field_type(VectorField, "sqlite") == "BLOB"
    render = ext.field_type(VectorField, "postgresql")
    assert callable(render) and render(VectorField(), None) == "vector(3)"
    assert ext.field_type(VectorField, "mysql") is None


# --- connections and pools --------------------------------------------------------------


def test_hook_dorm_connection_created() -> None:
    calls = _recorder("dorm_connection_created")
    conn = object()
    plugins.get_plugin_manager().hook.dorm_connection_created(
        alias="default", vendor="postgresql", connection=conn, is_async=False
    )
    assert calls == [dict(alias="default", vendor="postgresql", connection=conn, is_async=False)]

    class Failing:  # a setup hook: its error reaches the caller
        @hookimpl
        def dorm_connection_created(self, vendor: str) -> None:
            raise LookupError(f"no vector type on {vendor}")

    plugins.register(Failing(), name="failing")
    with pytest.raises(LookupError, match="no vector type on sqlite"):
        plugins.get_plugin_manager().hook.dorm_connection_created(
            alias="default", vendor="sqlite", connection=conn, is_async=False
        )


def _schema_model(name: str) -> Any:
    import dorm

    return type(
        name,
        (dorm.Model,),
        {
            "__module__": __name__,
            "title": dorm.CharField(max_length=20),
            "Meta": type("Meta", (), {"app_label": "hooks_schema"}),
        },
    )


def test_hook_dorm_schema_model_created(tmp_path: Any, fresh_settings: None) -> None:
    import dorm
    from dorm.migrations.schema import SchemaEditor

    model = _schema_model("SchemaCreated")
    dorm.configure(DATABASES={"default": {"ENGINE": "sqlite", "NAME": str(tmp_path / "h.db")}})
    calls = _recorder("dorm_schema_model_created")
    with SchemaEditor() as editor:
        editor.create_model(model)
        # Called after the table exists, with the editor that created it.
        assert calls == [dict(schema_editor=editor, model=model)]
        assert model._meta.db_table in editor.connection.table_names()
    with SchemaEditor(collect_sql=True) as collector:
        collector.create_model(model)
    assert calls[-1] == dict(schema_editor=collector, model=model)

    class Failing:  # a setup hook: its error reaches the caller and rolls the editor back
        @hookimpl
        def dorm_schema_model_created(self, model: type) -> None:
            raise LookupError(f"no trigger for {model.__name__}")

    plugins.register(Failing(), name="failing")
    other = _schema_model("SchemaCreatedTwo")
    with (
        pytest.raises(LookupError, match="no trigger for SchemaCreatedTwo"),
        SchemaEditor() as editor,
    ):
        editor.create_model(other)
    from dorm.db.connection import get_connection

    assert other._meta.db_table not in get_connection().table_names()


def test_hook_dorm_schema_model_altered(tmp_path: Any, fresh_settings: None) -> None:
    import dorm
    from dorm.migrations.schema import SchemaEditor, bind_field

    model = _schema_model("SchemaAltered")
    dorm.configure(DATABASES={"default": {"ENGINE": "sqlite", "NAME": str(tmp_path / "h.db")}})
    calls = _recorder("dorm_schema_model_altered")
    with SchemaEditor() as editor:
        editor.create_model(model)
        assert calls == []
        field = bind_field(model, "pages", dorm.IntegerField(default=0))
        editor.add_field(model, field)
        # After the change, with the model as the editor received it.
        assert calls == [dict(schema_editor=editor, model=model)]
        assert "pages" in [
            r[1]
            for r in editor.connection.fetchall('PRAGMA table_info("hooks_schema_schemaaltered")')
        ]
        editor.remove_field(model, field)
        assert len(calls) == 2
        editor.delete_model(model)


def test_hook_dorm_schema_model_deleted(tmp_path: Any, fresh_settings: None) -> None:
    import dorm
    from dorm.migrations.schema import SchemaEditor

    model = _schema_model("SchemaDeleted")
    dorm.configure(DATABASES={"default": {"ENGINE": "sqlite", "NAME": str(tmp_path / "h.db")}})
    calls = _recorder("dorm_schema_model_deleted")
    with SchemaEditor() as editor:
        editor.create_model(model)
        assert calls == []
        editor.delete_model(model)
        # Called after the DROP TABLE.
        assert calls == [dict(schema_editor=editor, model=model)]
        assert model._meta.db_table not in editor.connection.table_names()


def test_hook_dorm_pool_opened() -> None:
    _observe(
        "dorm_pool_opened",
        alias="default",
        vendor="postgresql",
        min_size=1,
        max_size=10,
        is_async=True,
    )


def test_hook_dorm_pool_warmed() -> None:
    _observe("dorm_pool_warmed", alias="replica", seconds=0.25, size=5, is_async=False)


# --- queries ----------------------------------------------------------------------------


def test_hook_dorm_pre_query() -> None:
    _observe(
        "dorm_pre_query",
        alias="default",
        vendor="sqlite",
        sql='SELECT "id" FROM "shop_item" WHERE "email" = ?',
        params=("***",),
    )


def test_hook_dorm_post_query() -> None:
    error = ValueError("duplicate key")
    _observe(
        "dorm_post_query",
        alias="default",
        vendor="postgresql",
        sql="INSERT ...",
        params=(1,),
        duration=0.002,
        rowcount=-1,
        error=error,
    )


def test_hook_dorm_query_failed(tmp_path: Any, fresh_settings: Any) -> None:
    """Sent from the statement path on failure only: a receiver on the alias and a plugin
    impl both get the dorm error; a statement that succeeds sends nothing."""
    import dorm
    from dorm.db.connection import get_connection
    from dorm.exceptions import OperationalError

    dorm.configure(DATABASES={"default": {"ENGINE": "sqlite", "NAME": str(tmp_path / "f.db")}})
    received: list[dict[str, Any]] = []

    def on_failure(signal: signals.Signal, **got: Any) -> None:
        received.append(got)

    signals.query_failed.connect(on_failure, sender="default", weak=False)
    try:
        calls = _recorder("dorm_query_failed")
        conn = get_connection()
        assert conn.fetchone("SELECT 1") == (1,)
        assert received == [] and calls == []
        with pytest.raises(OperationalError, match="no such table") as caught:
            conn.fetchall("SELECT * FROM missing_table")
    finally:
        signals.query_failed.disconnect(on_failure, sender="default")
    expected = {
        "alias": "default",
        "vendor": "sqlite",
        "sql": "SELECT * FROM missing_table",
        "error": caught.value,
        "sqlstate": None,
    }
    assert received == [{"sender": "default", **expected}]
    assert calls == [expected]


# --- transactions -----------------------------------------------------------------------


def test_hook_dorm_transaction_started() -> None:
    _observe("dorm_transaction_started", alias="default", savepoint=False, durable=True)


def test_hook_dorm_transaction_committed() -> None:
    _observe("dorm_transaction_committed", alias="default", savepoint=True, duration=0.7)


def test_hook_dorm_transaction_rolled_back() -> None:
    _observe(
        "dorm_transaction_rolled_back",
        alias="default",
        savepoint=False,
        duration=0.1,
        error=KeyError("x"),
    )


# --- model lifecycle --------------------------------------------------------------------


def test_hook_dorm_class_prepared() -> None:
    _send_signal(signals.class_prepared, sender=Article)


def test_hook_dorm_pre_save() -> None:
    _send_signal(
        signals.pre_save,
        sender=Article,
        instance=Article(),
        raw=False,
        using="default",
        update_fields=frozenset({"title"}),
    )


def test_hook_dorm_post_save() -> None:
    _send_signal(
        signals.post_save,
        sender=Article,
        instance=Article(),
        created=True,
        raw=False,
        using="default",
        update_fields=None,
    )


def test_hook_dorm_pre_delete() -> None:
    obj = Article()
    _send_signal(signals.pre_delete, sender=Article, instance=obj, using="default", origin=obj)


def test_hook_dorm_post_delete() -> None:
    obj = Article()
    _send_signal(signals.post_delete, sender=Article, instance=obj, using="other", origin=obj)


def test_hook_dorm_m2m_changed() -> None:
    _send_signal(
        signals.m2m_changed,
        sender=Tag,
        instance=Article(),
        action="post_add",
        reverse=False,
        model=Tag,
        pk_set={1, 2},
        using="default",
    )


def test_hook_dorm_bulk_created() -> None:
    _send_signal(signals.bulk_created, sender=Article, objs=[Article(), Article()], using="default")


def test_hook_dorm_bulk_updated() -> None:
    _send_signal(
        signals.bulk_updated, sender=Article, objs=[Article()], fields=["title"], using="default"
    )


def test_hook_dorm_queryset_updated() -> None:
    _send_signal(
        signals.queryset_updated,
        sender=Article,
        queryset="<qs>",
        values={"title": "x"},
        rows=4,
        using="default",
    )


def test_hook_dorm_queryset_deleted() -> None:
    _send_signal(
        signals.queryset_deleted,
        sender=Article,
        queryset="<qs>",
        deleted={"blog.Article": 2},
        using="default",
    )


def test_signal_hooks_run_in_pluggy_order_and_wrappers_still_wrap() -> None:
    """Signal.send calls plain hookimpls itself; a wrapper makes pluggy run the call."""
    order: list[str] = []

    class First:
        @hookimpl
        def dorm_post_delete(self, instance: Any) -> None:
            order.append("first")

    class Second:
        @hookimpl
        def dorm_post_delete(self, instance: Any) -> None:
            order.append("second")

    class Wrapping:
        @hookimpl(wrapper=True)
        def dorm_post_delete(self, instance: Any) -> Any:
            order.append("before")
            result = yield
            order.append("after")
            return result

    class Broken:
        @hookimpl
        def dorm_post_delete(self, instance: Any) -> None:
            raise RuntimeError("hookimpl failed")

    obj = Article()
    send = lambda: signals.post_delete.send(  # noqa: E731
        sender=Article, instance=obj, using="default", origin=obj
    )
    plugins.register(First(), name="first")
    plugins.register(Second(), name="second")
    send()
    assert order == ["second", "first"]  # last registered first, as pluggy calls them
    order.clear()
    plugins.register(Wrapping(), name="wrapping")
    send()
    assert order == ["before", "second", "first", "after"]
    plugins.unregister("wrapping")
    plugins.register(Broken(), name="broken")
    with pytest.raises(RuntimeError, match="hookimpl failed"):
        send()
