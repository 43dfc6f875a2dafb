"""The compiled-SELECT cache (dorm.sql.plan_cache) on both backends.

A repeated ``filter(**kwargs)`` / ``get(**kwargs)`` shape reuses its SQL with new values;
values that would change the SQL bypass it; plugins, sensitive patterns and connection
resets invalidate it; query capture and masking see the same statements as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import dorm
from dorm import plugins
from dorm.db.utils import MASK, add_sensitive_pattern, reset_sensitive_patterns
from dorm.exceptions import ValidationError
from dorm.lookups import Exact
from dorm.plugins import hookimpl
from dorm.sql import plan_cache
from dorm.test import CaptureQueriesContext, assertNumQueries


class Writer(dorm.Model):
    name = dorm.CharField(max_length=50)
    age = dorm.IntegerField(default=30)
    email = dorm.CharField(max_length=80, null=True)
    nickname = dorm.CharField(max_length=50, default="")

    class Meta:
        app_label = "t_plan"


class Essay(dorm.Model):
    title = dorm.CharField(max_length=100)
    writer = dorm.ForeignKey(Writer, on_delete=dorm.CASCADE, related_name="essays")
    words = dorm.IntegerField(default=0)

    class Meta:
        app_label = "t_plan"


MODELS = [Writer, Essay]


@pytest.fixture
def rows(clean_tables: Any) -> Iterator[list[Writer]]:
    plan_cache.clear()
    writers = [
        Writer.objects.create(name="ann", age=20, email="ann@x.io", nickname="a1"),
        Writer.objects.create(name="bob", age=30, email=None, nickname="b2"),
        Writer.objects.create(name="cy", age=40, email="cy@x.io", nickname="c3"),
    ]
    yield writers
    plan_cache.clear()


def _captured(fn: Any) -> list[dict[str, Any]]:
    with CaptureQueriesContext() as ctx:
        fn()
    return list(ctx.captured_queries)


def test_repeated_get_reuses_the_plan_with_new_values(rows: list[Writer]) -> None:
    for w in rows:
        assert Writer.objects.get(pk=w.pk).name == w.name
        assert Writer.objects.get(name=w.name).pk == w.pk
    assert plan_cache.size() == 2
    # A cached shape builds no WHERE until asked, and still returns the right row.
    list(Writer.objects.filter(pk=rows[0].pk))  # filter() shapes are not get()'s
    pending = Writer.objects.filter(pk=rows[1].pk)
    assert pending._pending is not None
    assert [w.name for w in pending] == ["bob"]
    first = _captured(lambda: Writer.objects.get(pk=rows[0].pk))
    second = _captured(lambda: Writer.objects.get(pk=rows[2].pk))
    assert first[0]["sql"] == second[0]["sql"]
    assert tuple(first[0]["params"]) != tuple(second[0]["params"])
    with pytest.raises(Writer.DoesNotExist):
        Writer.objects.get(pk=10_000)
    with pytest.raises(Writer.MultipleObjectsReturned):
        Writer.objects.get(age__gte=0)
    with pytest.raises(Writer.MultipleObjectsReturned):
        Writer.objects.get(age__gte=1)


def test_repeated_filter_and_chaining_after_a_cached_filter(rows: list[Writer]) -> None:
    for _ in range(2):
        assert [w.name for w in Writer.objects.filter(age__gte=30)] == ["bob", "cy"]
        assert [w.name for w in Writer.objects.filter(age__lt=30)] == ["ann"]
    qs = Writer.objects.filter(age__gte=30)
    assert qs._pending is not None
    assert [w.name for w in qs.order_by("-name")] == ["cy", "bob"]
    assert qs.count() == 2
    assert qs.exists()
    assert list(qs.values_list("name", flat=True).order_by("name")) == ["bob", "cy"]
    assert [w.name for w in qs.filter(name="cy")] == ["cy"]
    assert [w.name for w in qs.iterator(chunk_size=1)] == ["bob", "cy"]
    assert Writer.objects.filter(age__gte=30).update(nickname="z") == 2
    assert sorted(Writer.objects.filter(nickname="z").values_list("name", flat=True)) == [
        "bob",
        "cy",
    ]


def test_values_that_change_the_sql_bypass_the_cache(rows: list[Writer]) -> None:
    ann, bob, cy = rows
    for _ in range(2):
        assert Writer.objects.get(email=None).pk == bob.pk
        assert [w.pk for w in Writer.objects.filter(email=None)] == [bob.pk]
        assert Writer.objects.get(email="ann@x.io").pk == ann.pk
        assert list(Writer.objects.filter(pk__in=[])) == []
        assert [w.pk for w in Writer.objects.filter(pk__in=[ann.pk])] == [ann.pk]
        got = {w.pk for w in Writer.objects.filter(pk__in=[ann.pk, cy.pk])}
        assert got == {ann.pk, cy.pk}
    e = Essay.objects.create(title="t", writer=cy, words=5)
    for w in (cy, cy):
        assert [x.pk for x in Essay.objects.filter(writer=w)] == [e.pk]
    assert list(Essay.objects.filter(writer=ann)) == []
    assert [x.pk for x in Essay.objects.filter(writer_id=cy.pk)] == [e.pk]
    assert [x.pk for x in Essay.objects.filter(writer__name="cy")] == [e.pk]
    assert [x.pk for x in Essay.objects.filter(writer__name="cy")] == [e.pk]
    assert list(Essay.objects.filter(writer__name="ann")) == []


def test_bad_values_raise_as_without_the_cache(rows: list[Writer]) -> None:
    for _ in range(3):
        with pytest.raises(ValidationError):
            Writer.objects.filter(age="not a number")
        Writer.objects.filter(age=1)  # the shape is cached after the first good value


def test_state_of_the_base_queryset_is_part_of_the_shape(rows: list[Writer]) -> None:
    for _ in range(2):
        assert [w.name for w in Writer.objects.order_by("-age").filter(age__gt=10)] == [
            "cy",
            "bob",
            "ann",
        ]
        assert [w.name for w in Writer.objects.order_by("age").filter(age__gt=10)] == [
            "ann",
            "bob",
            "cy",
        ]
        only = Writer.objects.only("name").get(pk=rows[0].pk)
        assert "age" not in only.__dict__ and only.name == "ann"
        full = Writer.objects.get(pk=rows[0].pk)
        assert full.__dict__["age"] == 20
        e = Essay.objects.create(title="x", writer=rows[2])
        got = Essay.objects.select_related("writer").get(pk=e.pk)
        assert got._state.fields_cache["writer"].name == "cy"


class ExactMarker:
    """Renders ``exact`` with a marker comment: the cached SQL must not be reused."""

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor

    @hookimpl
    def dorm_register_vendor_sql(self) -> list[tuple[type, str, Any]]:
        def render(node: Exact, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
            sql, params = node.as_sql(compiler, connection)
            return f"{sql} /* marked */", params

        return [(Exact, self.vendor, render)]


def test_registering_a_plugin_invalidates(rows: list[Writer], backend: Any) -> None:
    Writer.objects.get(pk=rows[0].pk)
    Writer.objects.get(pk=rows[1].pk)
    assert plan_cache.size() == 1
    plugins.register(ExactMarker(backend.vendor), name="t-plan-marker")
    try:
        for w in rows:
            (query,) = _captured(lambda w=w: Writer.objects.get(pk=w.pk))
            assert "/* marked */" in query["sql"]
        assert Writer.objects.get(pk=rows[2].pk).name == "cy"
    finally:
        plugins.unregister("t-plan-marker")
    for w in rows:
        (query,) = _captured(lambda w=w: Writer.objects.get(pk=w.pk))
        assert "/* marked */" not in query["sql"]


def test_sensitive_pattern_change_invalidates_and_masks(rows: list[Writer]) -> None:
    for _ in range(2):
        (query,) = _captured(lambda: Writer.objects.get(nickname="a1"))
        assert tuple(query["params"])[0] == "a1"
    try:
        add_sensitive_pattern("nickname")
        for value in ("a1", "b2"):
            (query,) = _captured(lambda value=value: Writer.objects.get(nickname=value))
            assert tuple(query["params"])[0] == MASK
            assert value not in repr(query)
        assert Writer.objects.get(nickname="c3").name == "cy"
    finally:
        reset_sensitive_patterns()
    (query,) = _captured(lambda: Writer.objects.get(nickname="b2"))
    assert tuple(query["params"])[0] == "b2"


def test_assert_num_queries_through_cached_entries(rows: list[Writer]) -> None:
    Writer.objects.get(pk=rows[0].pk)
    with assertNumQueries(3):
        for w in rows:
            Writer.objects.get(pk=w.pk)
    with assertNumQueries(0):
        Writer.objects.filter(pk=rows[0].pk)  # lazy, cached or not


def test_connection_reset_clears(rows: list[Writer], db: Any) -> None:
    Writer.objects.get(pk=rows[0].pk)
    assert plan_cache.size() == 1
    dorm.configure(DATABASES={"default": db.settings})
    assert plan_cache.size() == 0
    assert Writer.objects.get(pk=rows[1].pk).name == "bob"


def test_the_cache_is_bounded(rows: list[Writer], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plan_cache, "MAX_ENTRIES", 5)
    fields = ["age", "pk", "name", "nickname"]
    lookups = ["", "__gt", "__gte", "__lt", "__lte"]
    for field in fields:
        for lookup in lookups:
            value = 25 if field in ("age", "pk") else "m"
            list(Writer.objects.filter(**{f"{field}{lookup}": value}))
            assert plan_cache.size() <= 5
    assert plan_cache.size() == 5
    # The most recent shapes are the ones kept.
    assert Writer.objects.filter(nickname__lte="m")._pending is not None
    assert Writer.objects.filter(age="25")._pending is None


def test_gets_through_a_bounded_cache_stay_right_and_keep_no_evicted_plan(
    rows: list[Writer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Manager.get() reaches its plan through a shortcut map; evictions from the bounded
    cache empty it, so it never keeps a plan the cache has dropped."""
    monkeypatch.setattr(plan_cache, "MAX_ENTRIES", 3)
    by_name = {w.name: w for w in rows}
    gets = [
        ({"name": "bob"}, "bob"),
        ({"nickname": "b2"}, "bob"),
        ({"email": "cy@x.io"}, "cy"),
        ({"name__gte": "cy"}, "cy"),
        ({"nickname__lte": "a1"}, "ann"),
    ]
    for _ in range(2):
        for kwargs, expected in gets:
            for _twice in range(2):  # the second get() of a shape goes through the shortcut
                assert Writer.objects.get(**kwargs).pk == by_name[expected].pk, kwargs
            kept = {id(plan) for plan in plan_cache._entries.values()}
            assert {id(plan) for plan in plan_cache._fresh_plans.values()} <= kept
            assert plan_cache.size() <= 3
    # A get shape evicted and asked again compiles again and still answers right.
    (query,) = _captured(lambda: Writer.objects.get(name="ann"))
    assert tuple(query["params"]) == ("ann",)


def test_one_row_inserts_reuse_their_statement_and_follow_patterns(rows: list[Writer]) -> None:
    made = [Writer.objects.create(name=f"w{i}", age=i, nickname=f"n{i}") for i in range(3)]
    assert len({w.pk for w in made}) == 3
    assert [Writer.objects.get(pk=w.pk).age for w in made] == [0, 1, 2]
    try:
        add_sensitive_pattern("nickname")
        (query,) = _captured(lambda: Writer.objects.create(name="hid", nickname="secret-nick"))
        assert "INSERT" in query["sql"] and MASK in tuple(query["params"])
        assert "secret-nick" not in repr(query)
    finally:
        reset_sensitive_patterns()
    (query,) = _captured(lambda: Writer.objects.create(name="vis", nickname="open-nick"))
    assert "open-nick" in tuple(query["params"])
    assert Writer.objects.get(nickname="secret-nick").name == "hid"


def test_count_of_a_cached_filter_reuses_one_count_statement(rows: list[Writer]) -> None:
    expected = {
        age: sum(1 for w in Writer.objects.all() if w.age >= age) for age in range(0, 80, 7)
    }
    assert plan_cache.size() == 0
    with CaptureQueriesContext() as ctx:
        counted = {age: Writer.objects.filter(age__gte=age).count() for age in expected}
    assert counted == expected
    assert plan_cache.size() == 1  # the count's shape got a plan, its COUNT learnt on it
    statements = {q["sql"] for q in ctx.captured_queries}
    assert len(ctx.captured_queries) == len(expected)  # one statement per count()
    assert len(statements) == 1 and "COUNT(" in next(iter(statements)).upper()
    # The same shape iterated afterwards uses the plan's SELECT.
    assert sorted(w.age for w in Writer.objects.filter(age__gte=30)) == [30, 40]
    # A value that changes the SQL (None: IS NULL) bypasses the learnt statement.
    assert Writer.objects.filter(email=None).count() == sum(1 for w in rows if w.email is None)


def test_count_of_a_cached_filter_masks_sensitive_values(rows: list[Writer]) -> None:
    add_sensitive_pattern("email")
    try:
        email = next(w.email for w in rows if w.email)
        with CaptureQueriesContext() as ctx:
            assert Writer.objects.filter(email=email).count() == 1
            assert Writer.objects.filter(email=email).count() == 1
        assert all(email not in repr(q["params"]) for q in ctx.captured_queries)
        assert all(MASK in repr(q["params"]) for q in ctx.captured_queries)
    finally:
        reset_sensitive_patterns()


def test_update_of_a_cached_filter_compiles_its_statement_once(rows: list[Writer]) -> None:
    F = dorm.F
    with CaptureQueriesContext() as ctx:
        assert Writer.objects.filter(age__gte=30).update(age=F("age") + 1) == 2
        assert Writer.objects.filter(age__gte=41).update(age=F("age") + 10) == 1
        assert Writer.objects.filter(age__lt=25).update(age=F("age") * 2) == 1
        assert Writer.objects.filter(age__gte=100).update(age=F("age") + 1) == 0
        assert Writer.objects.filter(age__gte=40).update(nickname="old") == 2
        assert Writer.objects.filter(age__gte=41).update(nickname="older") == 1
    ages = dict(Writer.objects.values_list("name", "age"))
    assert ages == {"ann": 40, "bob": 31, "cy": 51}
    assert sorted(Writer.objects.values_list("nickname", flat=True)) == ["b2", "old", "older"]
    sqls = [q["sql"] for q in ctx.captured_queries]
    assert sqls[0] == sqls[1] == sqls[3] and sqls[0] != sqls[2]  # * is another statement
    assert [tuple(q["params"]) for q in ctx.captured_queries[:2]] == [(1, 30), (10, 41)]
    # The same shape with a value that changes the SQL goes the long way, correctly.
    assert Writer.objects.filter(age__gte=40).update(email=None) == 2
    assert Writer.objects.filter(email=None).count() == 3
    with pytest.raises(ValidationError):
        Writer.objects.filter(age__gte=0).update(age="many")
    assert dict(Writer.objects.values_list("name", "age")) == ages


def test_update_of_a_cached_filter_masks_sensitive_values(rows: list[Writer]) -> None:
    add_sensitive_pattern("email")
    try:
        with CaptureQueriesContext() as ctx:
            for n in range(3):
                Writer.objects.filter(age__gte=30).update(email=f"secret{n}@x.io")
        assert len({q["sql"] for q in ctx.captured_queries}) == 1
        assert all("secret" not in repr(q["params"]) for q in ctx.captured_queries)
        assert all(MASK in repr(q["params"]) for q in ctx.captured_queries)
        assert sorted(filter(None, Writer.objects.values_list("email", flat=True))) == [
            "ann@x.io",
            "secret2@x.io",
            "secret2@x.io",
        ]
    finally:
        reset_sensitive_patterns()


class _Adults(dorm.Manager):
    def get_queryset(self) -> Any:
        return super().get_queryset().filter(age__gte=30)


class _Shouting(dorm.QuerySet):
    def get(self, *args: Any, **kwargs: Any) -> Any:
        obj = super().get(*args, **kwargs)
        obj.name = obj.name.upper()
        return obj

    def create(self, **kwargs: Any) -> Any:
        kwargs["nickname"] = "made-by-create"
        return super().create(**kwargs)


class Reader(dorm.Model):
    name = dorm.CharField(max_length=50)
    age = dorm.IntegerField(default=30)
    nickname = dorm.CharField(max_length=50, default="")

    objects = dorm.Manager()
    adults = _Adults()
    loud = dorm.Manager.from_queryset(_Shouting)()

    class Meta:
        app_label = "t_plan"


MODELS.append(Reader)


def test_managers_with_their_own_queryset_keep_it_for_get_and_create(rows: Any) -> None:
    young = Reader.objects.create(name="kid", age=10)
    old = Reader.objects.create(name="sage", age=70)
    # The plain manager's plan for get(pk=...) is cached first; the others must not use it.
    assert Reader.objects.get(pk=young.pk).name == "kid"
    assert Reader.objects.get(pk=young.pk).name == "kid"
    with pytest.raises(Reader.DoesNotExist, match=r"pk=\d+"):
        Reader.adults.get(pk=young.pk)
    assert Reader.adults.get(pk=old.pk).name == "sage"
    assert Reader.loud.get(pk=old.pk).name == "SAGE"
    made = Reader.loud.create(name="new", age=40)
    assert Reader.objects.get(pk=made.pk).nickname == "made-by-create"
    with pytest.raises(Reader.MultipleObjectsReturned, match="returned 2"):
        Reader.adults.get(age__gte=40)
    assert Reader.objects.using("default").get(name="kid").pk == young.pk


class _Filtering(dorm.QuerySet):
    def filter(self, *args: Any, **kwargs: Any) -> Any:
        return super().filter(*args, **kwargs).exclude(nickname="hidden")


class _WithHelpers(dorm.QuerySet):
    """Methods of its own, none of the ones the plan path uses."""

    def adults(self) -> Any:
        return self.filter(age__gte=18)


class BlankIsNull(dorm.CharField):
    """A field whose to_python() turns "" into None: filter(text="") means IS NULL."""

    def to_python(self, value: Any) -> Any:
        return None if value == "" else super().to_python(value)


class Member(dorm.Model):
    name = dorm.CharField(max_length=50)
    age = dorm.IntegerField(default=30)
    nickname = dorm.CharField(max_length=50, default="")
    motto = BlankIsNull(max_length=50, null=True)

    objects = dorm.Manager()
    adults = _Adults()
    visible = dorm.Manager.from_queryset(_Filtering)()
    helped = dorm.Manager.from_queryset(_WithHelpers)()

    class Meta:
        app_label = "t_plan"


MODELS.append(Member)


def test_manager_filter_served_by_a_plan_and_managers_that_change_filter(rows: Any) -> None:
    """``Model.objects.filter(**kwargs)`` reaches a cached plan without a fresh queryset:
    the same rows, the same statement with new values, a queryset that chains; a
    manager whose get_queryset() or QuerySet.filter() differs keeps its own."""
    kid = Member.objects.create(name="kid", age=10)
    Member.objects.create(name="sage", age=70, nickname="hidden")
    Member.objects.create(name="mid", age=40)
    with CaptureQueriesContext() as ctx:
        for _ in range(3):  # the plan is stored by the first, served to the others
            assert sorted(m.name for m in Member.objects.filter(age__gte=30)) == ["mid", "sage"]
    assert len({q["sql"] for q in ctx.captured_queries}) == 1
    served = Member.objects.filter(age__gte=50)
    assert served._pending is not None and type(served) is dorm.QuerySet
    assert [m.name for m in served] == ["sage"]
    assert [m.name for m in Member.objects.filter(age__lt=50).exclude(name="mid")] == ["kid"]
    assert Member.objects.filter(age__lt=50).update(nickname="young") == 2
    assert (
        list(Member.objects.filter(nickname="young").order_by("age").values_list("pk", flat=True))[
            0
        ]
        == kid.pk
    )
    # The other managers, after the plain one cached the shape:
    assert [m.name for m in Member.adults.filter(age__lt=50)] == ["mid"]
    assert [m.name for m in Member.visible.filter(age__gte=30)] == ["mid"]
    with pytest.raises(ValidationError):
        Member.objects.filter(age="old")
    # A manager whose QuerySet only adds methods: served by the plan, of its own class.
    assert sorted(m.name for m in Member.helped.filter(age__lt=50)) == ["kid", "mid"]
    helped = Member.helped.filter(age__lt=50)
    assert type(helped) is _WithHelpers and helped._pending is not None
    assert [m.name for m in helped.adults()] == ["mid"]
    # A value that prepares to None (IS NULL, another statement) is not served by the plan.
    Member.objects.filter(name="mid").update(motto="onward")
    for _ in range(2):
        assert [m.name for m in Member.objects.filter(motto="onward")] == ["mid"]
    assert sorted(m.name for m in Member.objects.filter(motto="")) == ["kid", "sage"]
