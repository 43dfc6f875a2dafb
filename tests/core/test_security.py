"""Security: identifiers are quoted, names are validated before SQL, values are always bound."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import dorm
from dorm.db.connection import get_connection
from dorm.exceptions import FieldError
from dorm.test import CaptureQueriesContext


class Order(dorm.Model):
    """Table, columns and relations named with SQL keywords and awkward characters."""

    select = dorm.CharField(max_length=30)
    where = dorm.IntegerField(default=0, db_column="where")
    weird = dorm.CharField(max_length=30, default="", db_column='we"ird %s col')

    class Meta:
        app_label = "t_sec"
        db_table = "order"
        ordering = ["select"]
        unique_together = [("select", "where")]
        indexes = [dorm.Index(fields=["-where"], name="order_where_idx")]


class Group(dorm.Model):
    order = dorm.ForeignKey(Order, on_delete=dorm.CASCADE, related_name="groups")
    table = dorm.CharField(max_length=30, db_column="table")
    members = dorm.ManyToManyField(Order, related_name="member_of")

    class Meta:
        app_label = "t_sec"
        db_table = "group by"


class Entry(dorm.Model):
    name = dorm.TextField()
    body = dorm.CharField(max_length=200, default="")

    class Meta:
        app_label = "t_sec"


class Doc(dorm.Model):
    data = dorm.JSONField(default=dict)

    class Meta:
        app_label = "t_sec"


class Canary(dorm.Model):
    """Must keep its rows through every hostile test."""

    note = dorm.CharField(max_length=20)

    class Meta:
        app_label = "t_sec"
        db_table = "t_sec_canary"


class Secret(dorm.Model):
    token = dorm.CharField(max_length=20)

    class Meta:
        app_label = "t_sec"
        db_table = "t_sec_secret"


MODELS = [Order, Group, Entry, Doc, Canary, Secret]
_TAKEN = {"order", "group by", "t_sec_entry", "t_sec_canary", "t_sec_secret", "t_sec_plain"}
_TAKEN |= {"t_sec_group_members"}
pytestmark = pytest.mark.usefixtures("clean_tables")

HOSTILE = [
    "'",
    '"',
    "''",
    "' OR '1'='1",
    'x\'; DROP TABLE "order"; --',
    "; DELETE FROM t_sec_entry",
    "-- comment",
    "/* c */",
    "%",
    "%%",
    "%s",
    "%(name)s",
    "_",
    "a_b",
    "a%b",
    "\\",
    "\\%",
    "\\_",
    "a\\b",
    "*",
    "?",
    "[a]",
    "[",
    "$1",
    "é ü ß",
    "日本語",
    "emoji 🎉",
    " padded ",
    "",
    "\t\n\r",
    "NULL",
]


# -- quoting -----------------------------------------------------------------------------------


def test_keyword_table_and_columns_work_end_to_end(db: Any) -> None:
    first = Order.objects.create(select="b", where=2, weird="w1")
    second = Order.objects.create(select="a", where=1, weird="w2")
    assert [o.select for o in Order.objects.all()] == ["a", "b"]
    assert Order.objects.get(where=2).pk == first.pk
    assert Order.objects.filter(weird="w2").get().select == "a"
    assert list(Order.objects.order_by("-where").values_list("where", flat=True)) == [2, 1]
    assert Order.objects.filter(where__gte=1, select__contains="a").count() == 1
    Order.objects.filter(pk=second.pk).update(where=dorm.F("where") + 10, weird="upd%")
    assert Order.objects.get(pk=second.pk).where == 11
    assert Order.objects.get(pk=second.pk).weird == "upd%"
    total = Order.objects.aggregate(s=dorm.Sum("where"))
    assert total == {"s": 13}
    second.select = "z"
    second.save()
    second.refresh_from_db()
    assert second.select == "z"
    objs = Order.objects.bulk_create([Order(select="c", where=3), Order(select="d", where=4)])
    for obj in objs:
        obj.weird = f"bulk{obj.where}"
    Order.objects.bulk_update(objs, ["weird"])
    assert sorted(Order.objects.filter(select__in=["c", "d"]).values_list("weird", flat=True)) == [
        "bulk3",
        "bulk4",
    ]
    assert Order.objects.in_bulk([first.pk])[first.pk].select == "b"
    assert Order.objects.filter(select="b").exists()
    Order.objects.filter(select="d").delete()
    assert Order.objects.count() == 3


def test_keyword_relations_work(db: Any) -> None:
    o1 = Order.objects.create(select="one", where=1)
    o2 = Order.objects.create(select="two", where=2)
    g = Group.objects.create(order=o1, table="t")
    g.members.add(o1, o2)
    assert Group.objects.select_related("order").get(pk=g.pk).order.select == "one"
    assert list(Group.objects.filter(order__select="one").values_list("table", flat=True)) == ["t"]
    assert sorted(Order.objects.filter(member_of__table="t").values_list("select", flat=True)) == [
        "one",
        "two",
    ]
    counts = dict(Order.objects.annotate(n=dorm.Count("groups")).values_list("select", "n"))
    assert counts == {"one": 1, "two": 0}
    (fetched,) = Group.objects.prefetch_related("members")
    assert sorted(o.select for o in fetched.members.all()) == ["one", "two"]
    sub = Group.objects.filter(order=dorm.OuterRef("pk"))
    assert list(Order.objects.filter(dorm.Exists(sub)).values_list("select", flat=True)) == ["one"]
    o1.delete()
    assert Group.objects.count() == 0
    assert Order.objects.get().select == "two"


def test_unique_together_on_keyword_columns(db: Any) -> None:
    from dorm.exceptions import IntegrityError

    Order.objects.create(select="s", where=1)
    with pytest.raises(IntegrityError):
        Order.objects.create(select="s", where=1)


def test_quote_name_escapes_embedded_quotes(db: Any) -> None:
    conn = get_connection()
    qn = conn.ops.quote_name
    pct = "%%" if conn.vendor == "postgresql" else "%"  # psycopg reads % in the statement
    assert qn("order") == '"order"'
    assert qn('a"b') == '"a""b"'
    # No "already quoted" shortcut: a quoted-looking name is one identifier, quotes and all.
    assert qn('"a"') == '"""a"""'
    assert qn('"n" FROM t; --"') == '"""n"" FROM t; --"""'
    assert qn("100%") == f'"100{pct}"'
    with pytest.raises(ValueError, match="contains a NUL character"):
        qn("a\x00b")
    with CaptureQueriesContext() as ctx:
        list(Order.objects.filter(weird="x"))
    assert '"we""ird' in ctx.captured_queries[0]["sql"]


# -- values are bound parameters ---------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_bound_and_matched_literally(db: Any, value: str) -> None:
    decoy = Entry.objects.create(name="decoy plain text", body="x")
    entry = Entry.objects.create(name=value, body=value)
    with CaptureQueriesContext() as ctx:
        found = list(Entry.objects.filter(name=value).values_list("pk", flat=True))
    assert found == [entry.pk]
    (query,) = ctx.captured_queries
    assert list(query["params"]) == [value]
    if len(value) > 2:
        assert value not in query["sql"]
    expected = {entry.pk} | ({decoy.pk} if value in decoy.name else set())
    assert set(Entry.objects.filter(name__contains=value).values_list("pk", flat=True)) == expected
    assert Entry.objects.get(pk=entry.pk).name == value
    assert Entry.objects.filter(body=value).count() == 1
    # The tables are intact after every statement.
    assert Order.objects.count() == 0 and Entry.objects.count() == 2


def test_like_wildcards_do_not_act_as_wildcards(db: Any) -> None:
    for name in ["a%b", "axb", "a_b", "ab", "a\\b", "a*b", "a?b", "a[b]"]:
        Entry.objects.create(name=name)

    def names(**lookup: Any) -> list[str]:
        return sorted(Entry.objects.filter(**lookup).values_list("name", flat=True))

    assert names(name__contains="%") == ["a%b"]
    assert names(name__contains="_") == ["a_b"]
    assert names(name__contains="\\") == ["a\\b"]
    assert names(name__contains="*") == ["a*b"]
    assert names(name__contains="?") == ["a?b"]
    assert names(name__contains="[b]") == ["a[b]"]
    assert names(name__startswith="a_") == ["a_b"]
    assert names(name__endswith="%b") == ["a%b"]
    assert names(name__icontains="A_") == ["a_b"]
    assert names(name__istartswith="A%") == ["a%b"]
    assert names(name__iendswith="\\B") == ["a\\b"]
    assert names(name__iexact="A_B") == ["a_b"]


def test_raw_sql_params_are_bound(db: Any) -> None:
    Entry.objects.create(name="x'y")
    ph = get_connection().ops.placeholder  # RawSQL takes the backend's own placeholder
    expr = dorm.RawSQL(f"SELECT COUNT(*) FROM t_sec_entry WHERE name = {ph}", ["x'y"])
    assert list(Entry.objects.annotate(n=expr).values_list("n", flat=True)) == [1]


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=30,
)
_hostile_text = st.one_of(
    _text,
    st.lists(
        st.sampled_from(["'", '"', ";", "--", "%", "_", "\\", "*", "?", "[", "]", "a", " "])
    ).map("".join),
)
_fast = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_fast
@given(value=_hostile_text)
def test_hypothesis_values_round_trip_literally(db: Any, value: str) -> None:
    decoys = {d.pk: d.name for d in Entry.objects.all()}
    if not decoys:
        for name in ["%", "_", "\\", "'", "a%b", "a_b", "*?[", "plain"]:
            Entry.objects.create(name=name)
        decoys = {d.pk: d.name for d in Entry.objects.all()}
    entry = Entry.objects.create(name=value)
    try:
        assert list(Entry.objects.filter(name=value).values_list("name", flat=True)).count(
            value
        ) == 1 + sum(1 for n in decoys.values() if n == value)
        assert Entry.objects.get(pk=entry.pk).name == value
        every = {entry.pk: value, **decoys}
        contains = set(Entry.objects.filter(name__contains=value).values_list("pk", flat=True))
        assert contains == {pk for pk, n in every.items() if value in n}
        starts = set(Entry.objects.filter(name__startswith=value).values_list("pk", flat=True))
        assert starts == {pk for pk, n in every.items() if n.startswith(value)}
        ends = set(Entry.objects.filter(name__endswith=value).values_list("pk", flat=True))
        assert ends == {pk for pk, n in every.items() if n.endswith(value)}
        if value.isascii():
            low = value.lower()
            icontains = set(
                Entry.objects.filter(name__icontains=value).values_list("pk", flat=True)
            )
            assert icontains == {pk for pk, n in every.items() if low in n.lower()}
    finally:
        Entry.objects.filter(pk=entry.pk).delete()


# -- names are validated before any SQL --------------------------------------------------------


def _no_sql(fn: Callable[[], Any]) -> FieldError:
    with CaptureQueriesContext() as ctx, pytest.raises(FieldError) as info:
        fn()
    assert ctx.captured_queries == []
    return info.value


@pytest.mark.parametrize(
    "call",
    [
        lambda: list(Entry.objects.filter(nope=1)),
        lambda: list(Entry.objects.exclude(nope=1)),
        lambda: Entry.objects.get(nope=1),
        lambda: list(Entry.objects.filter(dorm.Q(name="a") | dorm.Q(nope=1))),
        lambda: list(Entry.objects.order_by("nope")),
        lambda: list(Entry.objects.order_by("-nope")),
        lambda: list(Entry.objects.values("nope")),
        lambda: list(Entry.objects.values_list("nope", flat=True)),
        lambda: list(Entry.objects.only("nope")),
        lambda: list(Entry.objects.defer("nope")),
        lambda: list(Entry.objects.filter(name=dorm.F("nope"))),
        lambda: list(Entry.objects.annotate(x=dorm.F("nope"))),
        lambda: Entry.objects.aggregate(dorm.Max("nope")),
        lambda: Entry.objects.update(nope=1),
        lambda: Entry.objects.filter(name="a").update(body=dorm.F("nope")),
        lambda: Entry.objects.count() if list(Entry.objects.order_by("name; DROP")) else 0,
    ],
    ids=lambda _c: "",
)
def test_unknown_field_names_raise_before_sql(db: Any, call: Callable[[], Any]) -> None:
    Entry.objects.create(name="a")
    err = _no_sql(call)
    assert "Entry" in str(err)
    assert "name" in str(err) and "body" in str(err)  # the valid choices are listed
    assert Entry.objects.count() == 1


def test_unknown_lookup_names_the_field_and_known_lookups(db: Any) -> None:
    err = _no_sql(lambda: list(Entry.objects.filter(name__bogus="x")))
    assert "Entry.name" in str(err) and "'bogus'" in str(err)
    assert "exact" in str(err) and "icontains" in str(err)


def test_unknown_related_field_is_named(db: Any) -> None:
    err = _no_sql(lambda: list(Group.objects.filter(order__nope=1)))
    assert "Order" in str(err) and "select" in str(err) and "where" in str(err)
    err = _no_sql(lambda: list(Group.objects.order_by("order__nope")))
    assert "nope" in str(err)
    err = _no_sql(lambda: list(Group.objects.values("order__nope")))
    assert "nope" in str(err)


def test_select_related_of_a_non_relation(db: Any) -> None:
    _no_sql(lambda: list(Group.objects.select_related("table")))
    _no_sql(lambda: list(Group.objects.select_related("nope")))


_names = st.one_of(
    _text.filter(bool),
    st.lists(
        st.sampled_from(["'", '"', ";", "--", "%", "_", "\\", " ", "(", ")", "name", "*", "="]),
        min_size=1,
    ).map("".join),
)
_VALID = {"id", "pk", "name", "body", "?"}


def _invalid(name: str) -> bool:
    bare = name.lstrip("-+")
    return bare not in _VALID and name not in _VALID and bare.split("__")[0] not in _VALID


@_fast
@given(name=_names)
def test_hypothesis_hostile_field_names_are_rejected_without_sql(db: Any, name: str) -> None:
    assume(_invalid(name))
    if not Canary.objects.exists():
        Canary.objects.create(note="alive")
    for call in (
        lambda: list(Entry.objects.filter(**{name: 1})),
        lambda: list(Entry.objects.exclude(**{name: 1})),
        lambda: list(Entry.objects.order_by(name)),
        lambda: list(Entry.objects.values(name)),
        lambda: list(Entry.objects.values_list(name)),
        lambda: list(Entry.objects.values_list(name, flat=True)),
        lambda: list(Entry.objects.only(name)),
        lambda: list(Entry.objects.defer(name)),
        lambda: list(Entry.objects.filter(name=dorm.F(name))),
        lambda: list(Entry.objects.annotate(x=dorm.F(name))),
        lambda: list(Entry.objects.order_by(dorm.F(name).desc())),
        lambda: Entry.objects.aggregate(m=dorm.Max(name)),
        lambda: Entry.objects.update(body=dorm.F(name)),
        lambda: Entry.objects.update(**{name: "x"}),
        lambda: list(Entry.objects.select_related(name)),
    ):
        err = _no_sql(call)
        assert "Entry" in str(err)
    assert list(Canary.objects.values_list("note", flat=True)) == ["alive"]


def _json_key_sql(path: str) -> tuple[str, list[Any]]:
    with CaptureQueriesContext() as ctx:
        list(Doc.objects.filter(**{f"data__{path}": 1}))
    (query,) = ctx.captured_queries
    return query["sql"], list(query["params"])


@_fast
@given(name=_names)
def test_hypothesis_hostile_json_keys_are_bound_never_spliced(db: Any, name: str) -> None:
    """Past a JSONField every name is a key (as in Django): the key goes to the database
    as a bound parameter, so the statement is the one a harmless key of the same shape
    gives."""
    from dorm.models.json import JSONKeyField

    segments = name.split("__")
    known = dorm.plugins.extensions().lookup_names(JSONKeyField)
    assume(segments[-1] not in known and segments[-1] not in {"contained_by"})
    if not Canary.objects.exists():
        Canary.objects.create(note="alive")
    harmless = "__".join("0" if s.isdigit() else "k" for s in segments)
    sql, params = _json_key_sql(name)
    same_sql, same_params = _json_key_sql(harmless)
    assert sql == same_sql
    assert len(params) == len(same_params)
    assert list(Canary.objects.values_list("note", flat=True)) == ["alive"]


@_fast
@given(lookup=_names)
def test_hypothesis_hostile_lookup_names_are_rejected_without_sql(db: Any, lookup: str) -> None:
    assume("__" not in lookup)
    assume(lookup not in ("exact", "iexact", "contains", "icontains", "in", "gt", "gte", "lt"))
    assume(lookup not in ("lte", "startswith", "istartswith", "endswith", "iendswith"))
    assume(lookup not in ("range", "isnull", "regex"))
    err = _no_sql(lambda: list(Entry.objects.filter(**{f"name__{lookup}": "x"})))
    assert "Entry.name" in str(err)
    err = _no_sql(lambda: list(Entry.objects.order_by(f"name__{lookup}")))
    assert "Entry" in str(err)


# -- annotation aliases ------------------------------------------------------------------------


def test_issue_aliases_are_rejected_before_any_sql(db: Any) -> None:
    """The two aliases of the report: one read another table, one dropped a table."""
    Secret.objects.create(token="s3cr3t")
    Canary.objects.create(note="alive")
    read_secret = '"n", (SELECT token FROM t_sec_secret) AS "leak"'
    drop_table = '"n" FROM t; DROP TABLE t_sec_canary; SELECT 1 AS "x"'
    for alias in (read_secret, drop_table):
        for call in _alias_calls(alias):
            with CaptureQueriesContext() as ctx, pytest.raises(ValueError) as info:
                call()
            assert ctx.captured_queries == []
            assert repr(alias) in str(info.value)
            assert "whitespace, quotation marks" in str(info.value)
    assert list(Canary.objects.values_list("note", flat=True)) == ["alive"]
    assert Secret.objects.get().token == "s3cr3t"


def _alias_calls(alias: str) -> list[Callable[[], Any]]:
    """Every public way an alias reaches SQL, sync and async."""
    expr = dorm.F("name")

    async def async_calls() -> Any:
        await Entry.objects.aaggregate(**{alias: dorm.Count("id")})

    async def async_iter() -> Any:
        return [row async for row in Entry.objects.values(**{alias: expr})]

    return [
        lambda: list(Entry.objects.annotate(**{alias: expr})),
        lambda: Entry.objects.aggregate(**{alias: dorm.Count("id")}),
        lambda: list(Entry.objects.values(**{alias: expr})),
        lambda: list(Entry.objects.alias(**{alias: expr}).values_list("pk", flat=True)),
        lambda: list(Entry.objects.values("name").annotate(**{alias: dorm.Count("id")})),
        lambda: list(Entry.objects.annotate(**{alias: expr}).order_by(alias)),
        lambda: asyncio.run(async_calls()),
        lambda: asyncio.run(async_iter()),
    ]


@pytest.mark.parametrize(
    "alias",
    [
        'x" FROM "order"; --',
        "a b",
        "x;y",
        "x--y",
        "x/*y",
        "x*/y",
        "x'y",
        "x`y",
        "[x]",
        "\x00x",
        "tab\there",
        "nl\nx",
        "",
        "zero\u200bwidth",
        "\ud800",
    ],
)
def test_hostile_aliases_raise_value_error_without_sql(db: Any, alias: str) -> None:
    Entry.objects.create(name="a")
    for call in _alias_calls(alias):
        with CaptureQueriesContext() as ctx, pytest.raises(ValueError, match="the alias"):
            call()
        assert ctx.captured_queries == []
    assert Entry.objects.count() == 1 and Order.objects.count() == 0


@pytest.mark.parametrize("alias", ["x%sy", "%", "$1", "a.b", "f(x)", "x?", "日本", "a+b", "select"])
def test_odd_but_allowed_aliases_are_quoted(db: Any, alias: str) -> None:
    Entry.objects.create(name="a")
    rows = list(Entry.objects.annotate(**{alias: dorm.F("name")}).values_list(alias, flat=True))
    assert rows == ["a"]
    assert list(Entry.objects.values(**{alias: dorm.F("name")})) == [{alias: "a"}]
    assert Entry.objects.aggregate(**{alias: dorm.Count("id")}) == {alias: 1}
    filtered = Entry.objects.alias(**{alias: dorm.F("name")}).filter(**{alias: "a"})
    assert filtered.count() == 1
    grouped = list(Entry.objects.values("name").annotate(**{alias: dorm.Count("id")}))
    assert grouped == [{"name": "a", alias: 1}]
    assert Entry.objects.count() == 1 and Order.objects.count() == 0


def _shape(sql: str) -> tuple[str, list[str]]:
    """``sql`` with each quoted identifier replaced by ``"ID"`` and each string literal by
    ``'S'``, and the identifiers read back (``""`` -> ``"``). An identifier or literal left
    open fails the test: hostile text closed it early."""
    out: list[str] = []
    names: list[str] = []
    i = 0
    while i < len(sql):
        quote = sql[i]
        if quote not in "\"'":
            out.append(quote)
            i += 1
            continue
        j = i + 1
        while True:
            k = sql.find(quote, j)
            assert k != -1, f"unterminated {quote} in {sql!r}"
            if sql.startswith(quote * 2, k):
                j = k + 2
                continue
            break
        if quote == '"':
            names.append(sql[i + 1 : k].replace('""', '"'))
            out.append('"ID"')
        else:
            out.append("'S'")
        i = k + 1
    return "".join(out), names


def _unescape(name: str, vendor: str) -> str:
    return name.replace("%%", "%") if vendor == "postgresql" else name


_alias_text = st.one_of(
    st.text(max_size=25),
    st.lists(
        st.sampled_from(
            [
                '"',
                "'",
                ";",
                "--",
                "/*",
                "*/",
                " ",
                "%s",
                "%",
                "$1",
                "?",
                "(",
                ")",
                ",",
                "x",
                "AS",
                "FROM",
                "SELECT",
                "DROP TABLE t_sec_canary",
                "\x00",
                "`",
                "[",
                "\\",
                ".",
            ]
        ),
        min_size=1,
        max_size=8,
    ).map("".join),
)


@_fast
@given(alias=_alias_text)
def test_hypothesis_hostile_aliases(db: Any, alias: str) -> None:
    """An alias is either refused with ValueError before any SQL, or it is one quoted
    identifier: each statement has exactly the shape it has with a plain alias."""
    if not Canary.objects.exists():
        Canary.objects.create(note="alive")
    if not Entry.objects.exists():
        Entry.objects.create(name="a")
    assume(alias not in ("pk", "id", "name", "body") and "__" not in alias)
    vendor = get_connection().vendor

    def run(name: str) -> list[str]:
        with CaptureQueriesContext() as ctx:
            assert list(
                Entry.objects.annotate(**{name: dorm.F("name")}).values_list(name, flat=True)
            ) == ["a"]
            assert Entry.objects.aggregate(**{name: dorm.Count("id")}) == {name: 1}
            assert list(Entry.objects.values(**{name: dorm.F("name")})) == [{name: "a"}]
            assert Entry.objects.alias(**{name: dorm.F("name")}).filter(**{name: "a"}).count()
            grouped = Entry.objects.values("name").annotate(**{name: dorm.Count("id")})
            assert list(grouped) == [{"name": "a", name: 1}]
        return [q["sql"] for q in ctx.captured_queries]

    try:
        statements = run(alias)
    except ValueError as exc:
        assert "the alias" in str(exc)
        with CaptureQueriesContext() as ctx, pytest.raises(ValueError):
            list(Entry.objects.annotate(**{alias: dorm.F("name")}))
        assert ctx.captured_queries == []
    else:
        plain = run("plain_alias")
        assert len(statements) == len(plain)
        for hostile_sql, plain_sql in zip(statements, plain, strict=True):
            shape, names = _shape(hostile_sql)
            assert shape == _shape(plain_sql)[0]
        assert any(_unescape(n, vendor) == alias for s in statements for n in _shape(s)[1])
    assert list(Canary.objects.values_list("note", flat=True)) == ["alive"]
    assert Entry.objects.count() == 1


_meta_text = st.one_of(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=1,
        max_size=20,
    ),
    st.lists(
        st.sampled_from(
            [
                '"',
                "'",
                ";",
                "--",
                "/*",
                " ",
                "%s",
                "%",
                "?",
                "(",
                ")",
                "x",
                "DROP TABLE t_sec_canary",
            ]
        ),
        min_size=1,
        max_size=6,
    ).map("".join),
)
_models_made = [0]


def _scenario(table: str, column: str, index: str, check: str) -> list[str]:
    """Create a model's table named by Meta, write, read, aggregate and drop it; return
    every statement it ran. A DormError is the only other way out."""
    from dorm.migrations.schema import SchemaEditor

    _models_made[0] += 1
    attrs = {
        "__module__": __name__,
        "value": dorm.IntegerField(db_column=column, default=0),
        "label": dorm.CharField(max_length=20, default=""),
        "Meta": type(
            "Meta",
            (),
            {
                "app_label": "t_sec_dyn",
                "db_table": table,
                "indexes": [dorm.Index(fields=["label"], name=index)],
                "constraints": [
                    dorm.CheckConstraint(check=dorm.Q(value__gte=0), name=check),
                    dorm.UniqueConstraint(fields=["label"], name=check + "u"),
                ],
            },
        ),
    }
    model: Any = type(f"Dyn{_models_made[0]}", (dorm.Model,), attrs)
    with CaptureQueriesContext() as ctx:
        with SchemaEditor() as editor:
            editor.create_model(model)
        try:
            model.objects.create(value=1, label="one")
            model.objects.bulk_create([model(value=2, label="two")])
            assert sorted(model.objects.values_list("value", flat=True)) == [1, 2]
            model.objects.filter(value=2).update(value=dorm.F("value") + 1)
            assert model.objects.aggregate(total=dorm.Sum("value")) == {"total": 4}
            assert model.objects.order_by("-value").first().label == "two"
            model.objects.filter(label="one").delete()
            assert model.objects.count() == 1
        finally:
            with SchemaEditor() as editor:
                editor.delete_model(model)
    return [q["sql"] for q in ctx.captured_queries]


def _index_names(index: str, check: str) -> tuple[str, str]:
    """Index and constraint names must be identifiers: any other is refused at definition."""
    import re

    for kind, name in (("Index", index), ("CheckConstraint", check)):
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,61}", name):
            continue
        with pytest.raises(ValueError, match=f"{kind} name must be an identifier"):
            if kind == "Index":
                dorm.Index(fields=["label"], name=name)
            else:
                dorm.CheckConstraint(check=dorm.Q(value__gte=0), name=name)
    ok = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,61}")
    return (
        index if ok.fullmatch(index) else "hostile_idx",
        check if ok.fullmatch(check) else "hostile_chk",
    )


@_fast
@given(table=_meta_text, column=_meta_text, index=_meta_text, check=_meta_text)
def test_hypothesis_hostile_meta_names(
    db: Any, table: str, column: str, index: str, check: str
) -> None:
    """db_table and db_column are always one quoted identifier; index and constraint names
    are identifiers or refused with ValueError."""
    from dorm.exceptions import DormError

    if not Canary.objects.exists():
        Canary.objects.create(note="alive")
    index, check = _index_names(index, check)
    names = {table, column, index, check, check + "u"}
    assume(len(names) == 5 and column.lower() not in ("id", "label"))
    assume(not table.lower().startswith("sqlite_") and table.lower() not in _TAKEN)
    assume(all(len(n.encode()) <= 60 for n in names))  # PostgreSQL keeps 63 bytes
    try:
        statements = _scenario(table, column, index, check)
    except DormError:
        statements = None
    plain = _scenario("t_sec_plain", "plain_col", "plain_idx", "plain_chk")
    if statements is not None:
        assert [_shape(s)[0] for s in statements] == [_shape(s)[0] for s in plain]
    assert list(Canary.objects.values_list("note", flat=True)) == ["alive"]
    assert Order.objects.count() == 0


def _with_plugin(plugin: Any, check: Callable[[], Any]) -> Any:
    from dorm import plugins

    plugins.register(plugin, name="hostile-names")
    try:
        return check()
    finally:
        plugins.unregister(plugin)
        plugins.extensions()  # rebuilt without it


_plugin_names = st.one_of(
    st.text(max_size=15),
    st.sampled_from(["x; DROP TABLE t", "f(", 'a"b', "a.b.c", "1abc", "a b", "Upper", "a__b"]),
)


@_fast
@given(sql_name=_plugin_names)
@example(sql_name="A\n")  # "$" also matches before a final newline: fullmatch is needed
def test_hypothesis_plugin_function_names_must_be_sql_names(sql_name: str) -> None:
    """A registered function's ``function`` is written into SQL: anything but an SQL name
    (optionally schema-qualified) is refused when the plugins load."""
    import re

    from dorm import plugins
    from dorm.exceptions import PluginError
    from dorm.functions import Func

    bad = type("Hostile", (Func,), {"function": sql_name})

    class Funcs:
        @plugins.hookimpl
        def dorm_register_functions(self) -> list[type]:
            return [bad]

    ok = re.fullmatch(r"(?:[A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*", sql_name)
    if not sql_name or ok:
        assert _with_plugin(Funcs(), plugins.extensions).functions["Hostile"] is bad
        return
    with pytest.raises(PluginError, match=r"Hostile\.function must be an SQL function name"):
        _with_plugin(Funcs(), plugins.extensions)


@_fast
@given(lookup_name=_plugin_names)
@example(lookup_name="a\n")  # "$" in the name pattern let a trailing newline through
def test_hypothesis_plugin_lookup_names_must_be_identifiers(lookup_name: str) -> None:
    """A plugin lookup's name is matched against ``field__name`` keywords: anything but a
    lower-case identifier without ``__`` is refused when the plugins load."""
    import re

    from dorm import plugins
    from dorm.exceptions import PluginError
    from dorm.lookups import Lookup

    class Hostile(Lookup):
        pass

    assume(lookup_name not in plugins.extensions().lookup_names(dorm.TextField))  # core's own
    Hostile.lookup_name = lookup_name

    class Lookups:
        @plugins.hookimpl
        def dorm_register_lookups(self) -> list[tuple[type, type]]:
            return [(dorm.TextField, Hostile)]

    if re.fullmatch(r"[a-z][a-z0-9_]*", lookup_name) and "__" not in lookup_name:
        assert _with_plugin(
            Lookups(), lambda: lookup_name in plugins.extensions().lookup_names(dorm.TextField)
        )
        return
    with pytest.raises(PluginError, match="lookup_name must be a lower-case identifier"):
        _with_plugin(Lookups(), plugins.extensions)


def test_plugin_function_with_schema_name_is_accepted(
    register_plugin: Callable[[Any, str], None],
) -> None:
    from dorm import plugins
    from dorm.functions import Func

    good = type("Unaccent", (Func,), {"function": "public.unaccent"})

    class Funcs:
        @plugins.hookimpl
        def dorm_register_functions(self) -> list[type]:
            return [good]

    register_plugin(Funcs(), "good-funcs")
    assert plugins.extensions().functions["Unaccent"] is good
