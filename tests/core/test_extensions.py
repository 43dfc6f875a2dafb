"""Compiler extensions from a plugin: lookups, functions, per-vendor SQL, and backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm import plugins
from dorm.conf import settings
from dorm.db.backends import sqlite as sqlite_backend
from dorm.db.connection import get_connection, reset_connections
from dorm.exceptions import FieldError, ImproperlyConfigured
from dorm.expressions import Func
from dorm.functions import Length
from dorm.lookups import Lookup
from dorm.migrations.schema import SchemaEditor
from dorm.models.fields import Field
from dorm.plugins import hookimpl
from dorm.test import CaptureQueriesContext


class Score(dorm.Model):
    name = dorm.CharField(max_length=20)
    a = dorm.IntegerField()
    b = dorm.IntegerField()
    note = dorm.CharField(max_length=20, null=True)

    class Meta:
        app_label = "t_ext"
        ordering = ["name"]


MODELS = [Score]
pytestmark = pytest.mark.usefixtures("clean_tables")


# -- the test plugin ---------------------------------------------------------------------------


class NotEqual(Lookup):
    """``field__ne=value``: ``<>`` on every vendor."""

    lookup_name = "ne"

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} <> {rhs}", [*lhs_params, *rhs_params]


class IsDistinct(Lookup):
    """``field__distinct=value``: NULL-safe inequality, spelled differently per vendor."""

    lookup_name = "distinct"
    can_use_none_as_rhs = True

    def _render(self, compiler: Any, connection: Any, op: str) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} {op} {rhs}", [*lhs_params, *rhs_params]

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        raise AssertionError("as_<vendor> must win over as_sql")

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        return self._render(compiler, connection, "IS DISTINCT FROM")

    def as_sqlite(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        return self._render(compiler, connection, "IS NOT")


class Greatest(Func):
    """The largest of its arguments: GREATEST on PostgreSQL, scalar MAX on SQLite."""

    function = "GREATEST"


def sqlite_greatest(node: Greatest, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
    return node.as_sql(compiler, connection, function="MAX")


class ExtPlugin:
    @hookimpl
    def dorm_register_lookups(self) -> list[tuple[type, type]]:
        return [(Field, NotEqual), (Field, IsDistinct)]

    @hookimpl
    def dorm_register_functions(self) -> list[type]:
        return [Greatest]

    @hookimpl
    def dorm_register_vendor_sql(self) -> list[tuple[type, str, Any]]:
        return [(Greatest, "sqlite", sqlite_greatest)]


@pytest.fixture
def ext(db: Any) -> Iterator[Any]:
    plugins.register(ExtPlugin(), name="t-ext")
    try:
        yield db
    finally:
        plugins.unregister("t-ext")


def _rows() -> None:
    Score.objects.create(name="ann", a=1, b=5, note="x")
    Score.objects.create(name="bob", a=3, b=3, note=None)
    Score.objects.create(name="cid", a=7, b=2, note="y")


def _names(qs: Any) -> list[str]:
    return list(qs.values_list("name", flat=True))


# -- lookups -----------------------------------------------------------------------------------


def test_plugin_lookup_in_filter_exclude_and_q(ext: Any) -> None:
    _rows()
    assert _names(Score.objects.filter(a__ne=3)) == ["ann", "cid"]
    assert _names(Score.objects.exclude(a__ne=3)) == ["bob"]
    assert _names(Score.objects.filter(dorm.Q(a__ne=1) & dorm.Q(name__ne="cid"))) == ["bob"]
    assert _names(Score.objects.filter(a__ne=dorm.F("b"))) == ["ann", "cid"]
    assert _names(Score.objects.filter(name__ne="ann")) == ["bob", "cid"]
    with CaptureQueriesContext() as ctx:
        list(Score.objects.filter(a__ne=3))
    (query,) = ctx.captured_queries
    assert "<>" in query["sql"] and list(query["params"]) == [3]


def test_plugin_lookup_on_annotation_and_related_count(ext: Any) -> None:
    _rows()
    qs = Score.objects.annotate(total=dorm.F("a") + dorm.F("b")).filter(total__ne=6)
    assert _names(qs) == ["cid"]


def test_plugin_lookup_prefers_as_vendor(ext: Any) -> None:
    _rows()
    # NULL-safe: the NULL note is distinct from "x", unlike with <>.
    assert _names(Score.objects.filter(note__distinct="x")) == ["bob", "cid"]
    assert _names(Score.objects.filter(note__ne="x")) == ["cid"]
    assert _names(Score.objects.filter(note__distinct=None)) == ["ann", "cid"]
    with CaptureQueriesContext() as ctx:
        list(Score.objects.filter(note__distinct="x"))
    op = "IS DISTINCT FROM" if ext.vendor == "postgresql" else "IS NOT"
    assert op in ctx.captured_queries[0]["sql"]


def test_lookup_is_gone_after_unregister(ext: Any) -> None:
    _rows()
    assert Score.objects.filter(a__ne=1).count() == 2
    plugins.unregister("t-ext")
    try:
        expected = pytest.raises(FieldError, match=r"Score.*'ne'.*exact")
        with CaptureQueriesContext() as ctx, expected as info:
            Score.objects.filter(a__ne=1).count()
        assert ctx.captured_queries == []
        assert "gte" in str(info.value)
    finally:
        plugins.register(ExtPlugin(), name="t-ext")


# -- functions and vendor SQL ------------------------------------------------------------------


def test_plugin_function_with_vendor_override(ext: Any) -> None:
    _rows()
    func = plugins.extensions().functions["Greatest"]
    assert func is Greatest
    rows = list(Score.objects.annotate(top=func("a", "b")).values_list("name", "top"))
    assert rows == [("ann", 5), ("bob", 3), ("cid", 7)]
    assert _names(Score.objects.annotate(top=func("a", "b", 4)).filter(top__ne=4)) == [
        "ann",
        "cid",
    ]
    with CaptureQueriesContext() as ctx:
        list(Score.objects.annotate(top=func("a", "b")))
    sql = ctx.captured_queries[0]["sql"]
    if ext.vendor == "sqlite":
        assert "MAX(" in sql and "GREATEST" not in sql
    else:
        assert "GREATEST(" in sql


def test_plugin_function_in_update_and_order_by(ext: Any) -> None:
    _rows()
    Score.objects.filter(name="bob").update(a=Greatest("b", 10))
    assert Score.objects.get(name="bob").a == 10
    ordered = Score.objects.annotate(top=Greatest("a", "b")).order_by("-top")
    assert _names(ordered) == ["bob", "cid", "ann"]


def test_vendor_sql_overrides_a_core_node_until_unregistered(ext: Any) -> None:
    _rows()

    def doubled_length(node: Any, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        sql, params = node.as_sql(compiler, connection)
        return f"({sql} * 2)", params

    class Override:
        @hookimpl
        def dorm_register_vendor_sql(self) -> list[tuple[type, str, Any]]:
            return [(Length, ext.vendor, doubled_length)]

    def lengths() -> list[tuple[str, int]]:
        return list(Score.objects.annotate(n=Length("name")).values_list("name", "n"))

    assert lengths() == [("ann", 3), ("bob", 3), ("cid", 3)]
    plugins.register(Override(), name="t-ext-length")
    try:
        assert lengths() == [("ann", 6), ("bob", 6), ("cid", 6)]
    finally:
        plugins.unregister("t-ext-length")
    assert lengths() == [("ann", 3), ("bob", 3), ("cid", 3)]


def test_vendor_sql_for_another_vendor_is_not_used(ext: Any) -> None:
    _rows()
    other = "sqlite" if ext.vendor == "postgresql" else "postgresql"

    class Override:
        @hookimpl
        def dorm_register_vendor_sql(self) -> list[tuple[type, str, Any]]:
            return [(Length, other, lambda node, compiler, connection: ("boom(", []))]

    plugins.register(Override(), name="t-ext-other")
    try:
        assert Score.objects.annotate(n=Length("name")).filter(n=3).count() == 3
    finally:
        plugins.unregister("t-ext-other")


# -- backends ----------------------------------------------------------------------------------


class MemoWrapper(sqlite_backend.DatabaseWrapper):
    """A plugin backend: SQLite underneath, reached through ENGINE 'memo'."""

    display_name = "Memo"


class MemoPlugin:
    def __init__(self) -> None:
        self.asked: list[str] = []

    @hookimpl
    def dorm_backend_for(self, vendor: str) -> type | None:
        self.asked.append(vendor)
        return MemoWrapper if vendor == "memo" else None


@pytest.fixture
def restore_settings(db: Any) -> Iterator[Any]:
    yield db
    reset_connections()
    dorm.configure(DATABASES={"default": db.settings})


def test_hook_dorm_backend_for(restore_settings: Any, tmp_path: Path) -> None:
    memo = MemoPlugin()
    plugins.register(memo, name="t-ext-memo")
    try:
        dorm.configure(DATABASES={"default": {"ENGINE": "memo", "NAME": str(tmp_path / "m.db")}})
        assert settings.DATABASES["default"]["ENGINE"] == "memo"
        conn = get_connection()
        assert type(conn) is MemoWrapper
        assert conn.alias == "default" and conn.settings_dict["NAME"] == str(tmp_path / "m.db")
        assert "memo" in memo.asked
        with SchemaEditor(conn) as ed:
            ed.create_model(Score)
        Score.objects.create(name="m", a=1, b=2)
        assert list(Score.objects.values_list("name", "a", "b")) == [("m", 1, 2)]
        assert (tmp_path / "m.db").is_file()
        # The core engines still answer through the same hook.
        dorm.configure(DATABASES={"default": restore_settings.settings})
        assert type(get_connection()).__module__ == f"dorm.db.backends.{restore_settings.vendor}"
    finally:
        plugins.unregister("t-ext-memo")


def test_engine_nobody_answers(restore_settings: Any, tmp_path: Path) -> None:
    dorm.configure(
        DATABASES={
            "default": restore_settings.settings,
            "archive": {"ENGINE": "memo", "NAME": str(tmp_path / "m.db")},
        }
    )
    assert get_connection().vendor == restore_settings.vendor
    with pytest.raises(
        ImproperlyConfigured, match=r"DATABASES\['archive'\]\['ENGINE'\] = 'memo' is not a known"
    ):
        get_connection("archive")
    with pytest.raises(ImproperlyConfigured, match=r"'archive'.*'memo'"):
        Score.objects.using("archive").count()
