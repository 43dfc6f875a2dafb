"""Lookups, Q / F, aggregates with GROUP BY and HAVING, subqueries, Case/When and functions.

Every assertion runs on SQLite and PostgreSQL and expects the same rows on both.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

import dorm
from dorm.exceptions import FieldError
from dorm.expressions import ExpressionWrapper
from dorm.functions import Cast, Coalesce, Concat, Length, Lower, Now, Upper
from dorm.test import CaptureQueriesContext

UTC = datetime.UTC


class Dept(dorm.Model):
    name = dorm.CharField(max_length=40)
    budget = dorm.IntegerField(default=0)

    class Meta:
        app_label = "t_expr"


class Emp(dorm.Model):
    name = dorm.CharField(max_length=40)
    dept = dorm.ForeignKey(Dept, on_delete=dorm.CASCADE, related_name="emps", null=True)
    salary = dorm.IntegerField(default=0)
    bonus = dorm.IntegerField(null=True)
    nick = dorm.CharField(max_length=40, null=True)
    hired = dorm.DateTimeField(null=True)
    born = dorm.DateField(null=True)
    rate = dorm.DecimalField(max_digits=6, decimal_places=2, default=Decimal("1.00"))

    class Meta:
        app_label = "t_expr"


class Note(dorm.Model):
    text = dorm.CharField(max_length=60)

    class Meta:
        app_label = "t_expr"


MODELS = [Dept, Emp, Note]
pytestmark = pytest.mark.usefixtures("clean_tables")


@pytest.fixture
def staff(db):
    eng = Dept.objects.create(name="Engineering", budget=1000)
    ops = Dept.objects.create(name="Ops", budget=200)
    Dept.objects.create(name="Empty", budget=50)
    rows = [
        ("Alice", eng, 100, 10, "al", datetime.datetime(2020, 3, 15, 23, 30, tzinfo=UTC), 1990),
        ("Bob", eng, 80, None, None, datetime.datetime(2021, 7, 1, 8, 0, tzinfo=UTC), 1985),
        ("carol", ops, 60, 5, "cc", datetime.datetime(2020, 12, 31, 12, 0, tzinfo=UTC), 2000),
        ("Dave", ops, 40, None, "", None, None),
        ("Eve", None, 120, 20, None, datetime.datetime(2019, 1, 2, 3, 4, tzinfo=UTC), 1970),
    ]
    for name, dept, salary, bonus, nick, hired, year in rows:
        Emp.objects.create(
            name=name,
            dept=dept,
            salary=salary,
            bonus=bonus,
            nick=nick,
            hired=hired,
            born=datetime.date(year, 6, 15) if year else None,
        )
    return {"eng": eng, "ops": ops}


def names(qs) -> list[str]:
    return sorted(e.name for e in qs)


# -- lookups --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lookup", "value", "expected"),
    [
        ("name", "Bob", ["Bob"]),
        ("name__exact", "bob", []),
        ("name__iexact", "BOB", ["Bob"]),
        ("name__contains", "o", ["Bob", "carol"]),
        ("name__contains", "C", []),
        ("name__icontains", "C", ["Alice", "carol"]),
        ("name__in", ["Bob", "Eve", "Zed"], ["Bob", "Eve"]),
        ("name__in", [], []),
        ("salary__gt", 80, ["Alice", "Eve"]),
        ("salary__gte", 80, ["Alice", "Bob", "Eve"]),
        ("salary__lt", 60, ["Dave"]),
        ("salary__lte", 60, ["Dave", "carol"]),
        ("name__startswith", "c", ["carol"]),
        ("name__startswith", "C", []),
        ("name__istartswith", "C", ["carol"]),
        ("name__endswith", "e", ["Alice", "Dave", "Eve"]),
        ("name__endswith", "E", []),
        ("name__iendswith", "E", ["Alice", "Dave", "Eve"]),
        ("salary__range", (60, 100), ["Alice", "Bob", "carol"]),
        ("bonus__isnull", True, ["Bob", "Dave"]),
        ("bonus__isnull", False, ["Alice", "Eve", "carol"]),
        ("bonus", None, ["Bob", "Dave"]),
        ("name__regex", r"^[A-C]", ["Alice", "Bob"]),
        ("name__regex", r"l$", ["carol"]),
        ("hired__year", 2020, ["Alice", "carol"]),
        ("hired__year__gte", 2021, ["Bob"]),
        ("hired__month", 12, ["carol"]),
        ("hired__day", 1, ["Bob"]),
        ("hired__date", datetime.date(2020, 3, 15), ["Alice"]),
        ("born__year", 1990, ["Alice"]),
        ("born__year__lt", 1986, ["Bob", "Eve"]),
        ("born__month", 6, ["Alice", "Bob", "Eve", "carol"]),
        ("born__range", (datetime.date(1980, 1, 1), datetime.date(1995, 1, 1)), ["Alice", "Bob"]),
        ("dept__name", "Ops", ["Dave", "carol"]),
        ("dept__name__startswith", "Eng", ["Alice", "Bob"]),
        ("dept__budget__gt", 500, ["Alice", "Bob"]),
        ("dept__isnull", True, ["Eve"]),
        ("dept__in", [], []),
        ("nick", "", ["Dave"]),
        ("nick__iexact", None, ["Bob", "Eve"]),
        ("salary__contains", "12", ["Eve"]),
        ("salary__startswith", 1, ["Alice", "Eve"]),
        ("hired__year__in", [2019, 2021], ["Bob", "Eve"]),
        ("hired__month__range", (3, 7), ["Alice", "Bob"]),
        ("hired__date__gte", datetime.date(2020, 12, 31), ["Bob", "carol"]),
        ("hired__date__lt", datetime.date(2020, 3, 16), ["Alice", "Eve"]),
        ("born__day", 15, ["Alice", "Bob", "Eve", "carol"]),
        ("hired__isnull", True, ["Dave"]),
        ("name__regex", r"^(Al|Ev)", ["Alice", "Eve"]),
        ("pk__in", [], []),
        ("dept__emps__name", "Alice", ["Alice", "Bob"]),
    ],
)
def test_lookup(staff, lookup, value, expected) -> None:
    assert names(Emp.objects.filter(**{lookup: value})) == expected


def test_lookup_with_instances_and_querysets(staff) -> None:
    assert names(Emp.objects.filter(dept=staff["eng"])) == ["Alice", "Bob"]
    assert names(Emp.objects.filter(dept__in=[staff["eng"], staff["ops"]])) == [
        "Alice",
        "Bob",
        "Dave",
        "carol",
    ]
    rich = Dept.objects.filter(budget__gte=1000)
    assert names(Emp.objects.filter(dept__in=rich)) == ["Alice", "Bob"]
    # Reverse relation traversal.
    assert sorted(d.name for d in Dept.objects.filter(emps__salary__gte=100).distinct()) == [
        "Engineering"
    ]
    assert sorted(d.name for d in Dept.objects.filter(emps__isnull=True)) == ["Empty"]
    with pytest.raises(ValueError, match="Dept"):
        Emp.objects.filter(dept=Emp.objects.get(name="Bob"))


def test_datetime_lookups_with_datetime_values(staff) -> None:
    cut = datetime.datetime(2020, 6, 1, tzinfo=UTC)
    assert names(Emp.objects.filter(hired__gte=cut)) == ["Bob", "carol"]
    assert names(Emp.objects.filter(hired__lt=cut)) == ["Alice", "Eve"]
    # A naive value is taken as UTC on every backend.
    assert names(Emp.objects.filter(hired=datetime.datetime(2021, 7, 1, 8, 0))) == ["Bob"]
    other_tz = datetime.timezone(datetime.timedelta(hours=2))
    local = datetime.datetime(2021, 7, 1, 10, 0, tzinfo=other_tz)
    assert names(Emp.objects.filter(hired=local)) == ["Bob"]


WILD = ["50%", "500", "a_b", "axb", "x*y", "xzy", "q?r", "qzr", "[ab]", "a", "b\\c", "bxc"]


@pytest.mark.parametrize(
    ("lookup", "value", "expected"),
    [
        ("contains", "%", ["50%"]),
        ("contains", "0%", ["50%"]),
        ("contains", "_", ["a_b"]),
        ("contains", "*", ["x*y"]),
        ("contains", "?", ["q?r"]),
        ("contains", "[", ["[ab]"]),
        ("contains", "[ab]", ["[ab]"]),
        ("contains", "\\", ["b\\c"]),
        ("icontains", "%", ["50%"]),
        ("icontains", "A_B", ["a_b"]),
        ("icontains", "X*Y", ["x*y"]),
        ("icontains", "[AB]", ["[ab]"]),
        ("icontains", "B\\C", ["b\\c"]),
        ("startswith", "50%", ["50%"]),
        ("startswith", "a_", ["a_b"]),
        ("startswith", "[", ["[ab]"]),
        ("istartswith", "Q?", ["q?r"]),
        ("endswith", "*y", ["x*y"]),
        ("endswith", "?r", ["q?r"]),
        ("iendswith", "_B", ["a_b"]),
        ("iendswith", "%", ["50%"]),
        ("exact", "a_b", ["a_b"]),
        ("iexact", "A_B", ["a_b"]),
        ("iexact", "50%", ["50%"]),
        ("iexact", "[AB]", ["[ab]"]),
    ],
)
def test_wildcards_match_literally(db, lookup, value, expected) -> None:
    Note.objects.bulk_create([Note(text=t) for t in WILD])
    found = sorted(Note.objects.filter(**{f"text__{lookup}": value}).values_list("text", flat=True))
    assert found == expected


def test_case_sensitivity_matches_across_backends(db) -> None:
    Note.objects.bulk_create([Note(text=t) for t in ["Hello", "hello", "HELLO", "help"]])

    def find(**kw) -> list[str]:
        return sorted(Note.objects.filter(**kw).values_list("text", flat=True))

    assert find(text__contains="ell") == ["Hello", "hello"]
    assert find(text__contains="ELL") == ["HELLO"]
    assert find(text__icontains="ELL") == ["HELLO", "Hello", "hello"]
    assert find(text__startswith="h") == ["hello", "help"]
    assert find(text__endswith="LO") == ["HELLO"]
    assert find(text__iexact="hello") == ["HELLO", "Hello", "hello"]
    assert find(text="hello") == ["hello"]
    assert find(text__regex="^h") == ["hello", "help"]


def test_unknown_lookup_names_model_and_known_lookups(staff) -> None:
    with CaptureQueriesContext() as ctx:
        with pytest.raises(FieldError) as exc:
            Emp.objects.filter(name__like="x")
        message = str(exc.value)
        assert "Emp.name" in message and "'like'" in message
        for known in ("exact", "iexact", "contains", "in", "range", "isnull", "regex"):
            assert known in message
        with pytest.raises(FieldError) as exc:
            Emp.objects.filter(hired__year__bogus=1)
        assert "Emp.hired" in str(exc.value) and "'bogus'" in str(exc.value)
        with pytest.raises(FieldError) as exc:
            Emp.objects.filter(salary__year=2020)
        assert "'year'" in str(exc.value) and "IntegerField" in str(exc.value)
    assert len(ctx) == 0


def test_bad_lookup_values(staff) -> None:
    with pytest.raises(TypeError, match="iterable"):
        Emp.objects.filter(salary__in=5)
    with pytest.raises(ValueError, match="isnull"):
        Emp.objects.filter(bonus__isnull="yes")
    with pytest.raises(TypeError, match="two bounds"):
        Emp.objects.filter(salary__range=(1, 2, 3))
    with pytest.raises(ValueError, match="None"):
        Emp.objects.filter(salary__gt=None)


# -- Q and F --------------------------------------------------------------------------------------


def test_q_combinations(staff) -> None:
    Q = dorm.Q
    assert names(Emp.objects.filter(Q(salary__gte=100) | Q(name="Dave"))) == [
        "Alice",
        "Dave",
        "Eve",
    ]
    assert names(Emp.objects.filter(Q(salary__gte=80) & Q(dept__name="Engineering"))) == [
        "Alice",
        "Bob",
    ]
    assert names(Emp.objects.filter(~Q(salary__gte=80))) == ["Dave", "carol"]
    nested = (Q(dept__name="Ops") | Q(dept__isnull=True)) & ~Q(Q(salary__lt=50) | Q(name="Eve"))
    assert names(Emp.objects.filter(nested)) == ["carol"]
    assert names(Emp.objects.exclude(Q(dept__name="Ops") | Q(salary__gt=90))) == ["Bob"]
    # ~Q on a nullable column keeps NULL rows, like exclude().
    assert names(Emp.objects.filter(~Q(bonus=10))) == ["Bob", "Dave", "Eve", "carol"]
    # Q with a positional Q and keyword args, and Q mixed with kwargs in filter().
    assert names(Emp.objects.filter(Q(dept__name="Ops"), salary__gt=50)) == ["carol"]
    assert names(Emp.objects.filter(Q())) == ["Alice", "Bob", "Dave", "Eve", "carol"]


def test_f_in_filter_and_annotate(staff) -> None:
    F = dorm.F
    Emp.objects.filter(name="Dave").update(bonus=50)
    assert names(Emp.objects.filter(bonus__gt=F("salary") / 10)) == ["Dave", "Eve"]
    assert names(Emp.objects.filter(salary__lt=F("dept__budget") / 5)) == ["Alice", "Bob"]
    assert names(Emp.objects.filter(salary__lte=F("dept__budget") / 5)) == ["Alice", "Bob", "Dave"]
    got = dict(
        Emp.objects.annotate(total=F("salary") + F("bonus"), double=F("salary") * 2)
        .filter(total__isnull=False)
        .values_list("name", "total")
    )
    assert got == {"Alice": 110, "carol": 65, "Dave": 90, "Eve": 140}
    doubled = Emp.objects.annotate(d=F("salary") * 2 - 1).get(name="Bob").d
    assert doubled == 159
    neg = Emp.objects.annotate(n=-F("salary")).get(name="Bob").n
    assert neg == -80
    rem = Emp.objects.annotate(r=F("salary") % 30).get(name="Bob").r
    assert rem == 20
    assert names(Emp.objects.filter(dorm.F("salary").between(60, 100))) == [
        "Alice",
        "Bob",
        "carol",
    ]
    with pytest.raises(FieldError, match="Emp"):
        Emp.objects.filter(salary=F("nope"))


def test_f_coalesce_sugar(staff) -> None:
    rows = dict(Emp.objects.annotate(n=dorm.F("nick").coalesce("anon")).values_list("name", "n"))
    assert rows == {"Alice": "al", "Bob": "anon", "carol": "cc", "Dave": "", "Eve": "anon"}


# -- aggregates, GROUP BY, HAVING -----------------------------------------------------------------


def test_values_annotate_group_by(staff) -> None:
    rows = list(
        Emp.objects.filter(dept__isnull=False)
        .values("dept__name")
        .annotate(n=dorm.Count("id"), total=dorm.Sum("salary"), top=dorm.Max("salary"))
        .order_by("dept__name")
    )
    assert rows == [
        {"dept__name": "Engineering", "n": 2, "total": 180, "top": 100},
        {"dept__name": "Ops", "n": 2, "total": 100, "top": 60},
    ]
    having = list(
        Emp.objects.values("dept")
        .annotate(total=dorm.Sum("salary"))
        .filter(total__gt=150)
        .values_list("dept", "total")
    )
    assert having == [(staff["eng"].pk, 180)]


def test_annotate_count_reverse_relation_and_having(staff) -> None:
    depts = Dept.objects.annotate(n=dorm.Count("emps"), avg=dorm.Avg("emps__salary"))
    got = {d.name: (d.n, d.avg) for d in depts}
    assert got == {"Engineering": (2, 90.0), "Ops": (2, 50.0), "Empty": (0, None)}
    assert sorted(d.name for d in depts.filter(n=0)) == ["Empty"]
    assert sorted(d.name for d in depts.filter(n__gt=0, budget__lt=500)) == ["Ops"]
    assert sorted(d.name for d in depts.filter(dorm.Q(n=0) | dorm.Q(avg__gt=80))) == [
        "Empty",
        "Engineering",
    ]
    assert [d.name for d in depts.order_by("-n", "name")] == ["Engineering", "Ops", "Empty"]
    assert list(
        Dept.objects.annotate(n=dorm.Count("emps", filter=dorm.Q(emps__salary__gte=80)))
        .order_by("name")
        .values_list("name", "n")
    ) == [
        ("Empty", 0),
        ("Engineering", 2),
        ("Ops", 0),
    ]


def test_count_distinct_and_aggregate_filter(staff) -> None:
    assert Emp.objects.aggregate(n=dorm.Count("dept", distinct=True)) == {"n": 2}
    assert Emp.objects.aggregate(n=dorm.Count("bonus")) == {"n": 3}
    assert Emp.objects.aggregate(n=dorm.Count("*")) == {"n": 5}
    assert Emp.objects.aggregate(s=dorm.Sum("salary", distinct=True)) == {"s": 400}
    result = Emp.objects.aggregate(
        hi=dorm.Sum("salary", filter=dorm.Q(salary__gte=80)),
        lo=dorm.Sum("salary", filter=~dorm.Q(salary__gte=80)),
        ops=dorm.Count("id", filter=dorm.Q(dept__name="Ops")),
    )
    assert result == {"hi": 300, "lo": 100, "ops": 2}
    with pytest.raises(TypeError, match="distinct"):
        dorm.Min("salary", distinct=True)


def test_aggregate_of_annotation_and_expression(staff) -> None:
    assert Emp.objects.aggregate(s=dorm.Sum(dorm.F("salary") * 2)) == {"s": 800}
    annotated = Emp.objects.annotate(total=dorm.F("salary") + Coalesce("bonus", 0))
    assert annotated.aggregate(m=dorm.Max("total")) == {"m": 140}
    per_dept = Dept.objects.annotate(n=dorm.Count("emps"))
    assert per_dept.aggregate(total=dorm.Sum("n")) == {"total": 4}
    with pytest.raises(FieldError, match="aggregate"):
        Dept.objects.annotate(x=dorm.Sum(dorm.Count("emps")))


# -- subqueries ----------------------------------------------------------------------------------


def test_subquery_and_outerref(staff) -> None:
    top = Emp.objects.filter(dept=dorm.OuterRef("pk")).order_by("-salary").values("name")[:1]
    rows = dict(
        Dept.objects.annotate(top=dorm.Subquery(top)).order_by("name").values_list("name", "top")
    )
    assert rows == {"Empty": None, "Engineering": "Alice", "Ops": "carol"}
    # Correlated subquery in filter: employees earning their department's maximum.
    best = Emp.objects.filter(dept=dorm.OuterRef("dept")).order_by("-salary").values("salary")[:1]
    assert names(Emp.objects.filter(salary=dorm.Subquery(best))) == ["Alice", "carol"]
    # Subquery with an aggregate over a correlated group.
    total = (
        Emp.objects.filter(dept=dorm.OuterRef("pk"))
        .values("dept")
        .annotate(s=dorm.Sum("salary"))
        .values("s")
    )
    got = dict(Dept.objects.annotate(s=dorm.Subquery(total)).values_list("name", "s"))
    assert got == {"Engineering": 180, "Ops": 100, "Empty": None}
    # pk__in with a values() queryset.
    assert names(Emp.objects.filter(dept__in=Dept.objects.filter(name="Ops").values("pk"))) == [
        "Dave",
        "carol",
    ]


def test_exists(staff) -> None:
    rich = Emp.objects.filter(dept=dorm.OuterRef("pk"), salary__gte=100)
    assert sorted(d.name for d in Dept.objects.filter(dorm.Exists(rich))) == ["Engineering"]
    assert sorted(d.name for d in Dept.objects.filter(~dorm.Exists(rich))) == ["Empty", "Ops"]
    flags = dict(Dept.objects.annotate(has=dorm.Exists(rich)).values_list("name", "has"))
    assert flags == {"Engineering": True, "Ops": False, "Empty": False}
    combined = Dept.objects.filter(dorm.Exists(rich) | dorm.Q(name="Empty"))
    assert sorted(d.name for d in combined) == ["Empty", "Engineering"]


def test_outerref_outside_subquery_fails(staff) -> None:
    with pytest.raises(FieldError, match="OuterRef"):
        list(Emp.objects.filter(dept=dorm.OuterRef("pk")))


# -- Case / When ---------------------------------------------------------------------------------


def test_case_when(staff) -> None:
    band = dorm.Case(
        dorm.When(salary__gte=100, then=dorm.Value("high")),
        dorm.When(dorm.Q(salary__gte=60) & dorm.Q(dept__isnull=False), then=dorm.Value("mid")),
        default=dorm.Value("low"),
    )
    got = dict(Emp.objects.annotate(band=band).values_list("name", "band"))
    assert got == {"Alice": "high", "Bob": "mid", "carol": "mid", "Dave": "low", "Eve": "high"}
    ordered = Emp.objects.annotate(
        rank=dorm.Case(
            dorm.When(name="Dave", then=0),
            default=1,
            output_field=dorm.IntegerField(),
        )
    ).order_by("rank", "name")
    assert [e.name for e in ordered][:2] == ["Dave", "Alice"]
    high = Emp.objects.aggregate(
        n=dorm.Sum(dorm.Case(dorm.When(salary__gte=80, then=1), default=0))
    )
    assert high == {"n": 3}
    assert names(Emp.objects.annotate(band=band).filter(band="mid")) == ["Bob", "carol"]
    # Case in update(): per-row values in one statement.
    Emp.objects.update(
        salary=dorm.Case(dorm.When(name="Bob", then=dorm.F("salary") + 1), default=dorm.F("salary"))
    )
    assert Emp.objects.get(name="Bob").salary == 81
    assert Emp.objects.get(name="Alice").salary == 100
    with pytest.raises(TypeError, match="When"):
        dorm.When(then=1)
    with pytest.raises(TypeError, match="When"):
        dorm.Case("x")


# -- functions -----------------------------------------------------------------------------------


def test_text_functions(staff) -> None:
    rows = dict(
        Emp.objects.annotate(
            lo=Lower("name"), up=Upper("name"), n=Length("name"), full=Concat("name", "nick")
        ).values_list("name", "lo")
    )
    assert rows["Alice"] == "alice"
    obj = (
        Emp.objects.annotate(
            lo=Lower("name"),
            up=Upper("name"),
            n=Length("name"),
            full=Concat("name", dorm.Value("/"), "nick"),
        )
        .filter(name="Bob")
        .get()
    )
    assert (obj.lo, obj.up, obj.n, obj.full) == ("bob", "BOB", 3, "Bob/")
    assert names(Emp.objects.annotate(lo=Lower("name")).filter(lo="carol")) == ["carol"]
    assert names(Emp.objects.annotate(n=Length("name")).filter(n__gt=4)) == ["Alice", "carol"]
    assert [e.name for e in Emp.objects.order_by(Lower("name"))] == [
        "Alice",
        "Bob",
        "carol",
        "Dave",
        "Eve",
    ]
    concat = dict(Emp.objects.annotate(c=Concat("name", "salary")).values_list("name", "c"))
    assert concat["Bob"] == "Bob80"
    with pytest.raises(ValueError, match="Concat"):
        Concat("name")
    with pytest.raises(TypeError):
        Lower("name", "nick")


def test_coalesce(staff) -> None:
    got = dict(Emp.objects.annotate(b=Coalesce("bonus", 0)).values_list("name", "b"))
    assert got == {"Alice": 10, "Bob": 0, "carol": 5, "Dave": 0, "Eve": 20}
    got = dict(
        Emp.objects.annotate(n=Coalesce("nick", "name", dorm.Value("?"))).values_list("name", "n")
    )
    assert got == {"Alice": "al", "Bob": "Bob", "carol": "cc", "Dave": "", "Eve": "Eve"}
    total = Emp.objects.filter(name="Nobody").aggregate(s=Coalesce(dorm.Sum("salary"), 0))
    assert total == {"s": 0}
    with pytest.raises(ValueError, match="two"):
        Coalesce("bonus")


def test_now(staff) -> None:
    before = datetime.datetime.now(UTC) - datetime.timedelta(seconds=5)
    value = Emp.objects.annotate(now=Now()).values_list("now", flat=True).first()
    assert isinstance(value, datetime.datetime) and value.tzinfo is not None
    assert before <= value <= datetime.datetime.now(UTC) + datetime.timedelta(seconds=5)
    assert names(Emp.objects.filter(hired__lt=Now())) == ["Alice", "Bob", "Eve", "carol"]
    Emp.objects.filter(name="Dave").update(hired=Now())
    dave = Emp.objects.get(name="Dave").hired
    assert before <= dave <= datetime.datetime.now(UTC) + datetime.timedelta(seconds=5)


def test_cast(staff) -> None:
    got = dict(
        Emp.objects.annotate(
            s=Cast("salary", output_field=dorm.CharField(max_length=10))
        ).values_list("name", "s")
    )
    assert got["Bob"] == "80"
    as_int = Emp.objects.annotate(
        i=Cast(dorm.Value("42"), output_field=dorm.IntegerField())
    ).values_list("i", flat=True)
    assert set(as_int) == {42}
    as_dec = Emp.objects.annotate(
        d=Cast("salary", output_field=dorm.DecimalField(max_digits=8, decimal_places=2))
    ).get(name="Bob")
    assert as_dec.d == Decimal("80.00")
    flt = Emp.objects.annotate(
        f=ExpressionWrapper(Cast("salary", dorm.FloatField()) / 3, output_field=dorm.FloatField())
    ).get(name="Bob")
    assert flt.f == pytest.approx(80 / 3)


def test_expression_ordering_nulls(staff) -> None:
    F = dorm.F
    assert [e.name for e in Emp.objects.order_by(F("bonus").desc(nulls_last=True), "name")] == [
        "Eve",
        "Alice",
        "carol",
        "Bob",
        "Dave",
    ]
    assert [e.name for e in Emp.objects.order_by(F("bonus").asc(nulls_first=True), "name")] == [
        "Bob",
        "Dave",
        "carol",
        "Alice",
        "Eve",
    ]
    assert [e.name for e in Emp.objects.order_by(F("bonus").desc(nulls_first=True), "name")][
        :2
    ] == ["Bob", "Dave"]
    with pytest.raises(ValueError):
        F("bonus").asc(nulls_first=True, nulls_last=True)


# -- edge cases -----------------------------------------------------------------------------------


def test_exclude_across_nullable_relation_keeps_null(staff) -> None:
    assert names(Emp.objects.exclude(dept__name="Ops")) == ["Alice", "Bob", "Eve"]
    assert names(Emp.objects.exclude(dept__budget__gt=500)) == ["Dave", "Eve", "carol"]
    # Multi-valued: departments with no employee earning >= 100.
    assert sorted(d.name for d in Dept.objects.exclude(emps__salary__gte=100)) == [
        "Empty",
        "Ops",
    ]


def test_outerref_across_relation_and_nested(staff) -> None:
    same_dept_richer = Emp.objects.filter(
        dept__name=dorm.OuterRef("dept__name"), salary__gt=dorm.OuterRef("salary")
    )
    assert names(Emp.objects.filter(~dorm.Exists(same_dept_richer), dept__isnull=False)) == [
        "Alice",
        "carol",
    ]
    counts = (
        Emp.objects.filter(dept=dorm.OuterRef("pk"))
        .values("dept")
        .annotate(n=dorm.Count("id"))
        .values("n")
    )
    got = dict(Dept.objects.annotate(n=Coalesce(dorm.Subquery(counts), 0)).values_list("name", "n"))
    assert got == {"Engineering": 2, "Ops": 2, "Empty": 0}


def test_update_with_subquery_and_expressions(staff) -> None:
    top = Emp.objects.filter(dept=dorm.OuterRef("pk")).order_by("-salary").values("salary")[:1]
    assert Dept.objects.update(budget=Coalesce(dorm.Subquery(top), 0)) == 3
    assert dict(Dept.objects.values_list("name", "budget")) == {
        "Engineering": 100,
        "Ops": 60,
        "Empty": 0,
    }
    assert Emp.objects.filter(bonus__isnull=True).update(bonus=dorm.F("salary") / 10) == 2
    assert Emp.objects.get(name="Bob").bonus == 8
    with pytest.raises(FieldError, match="dept__budget"):
        Emp.objects.update(salary=dorm.F("dept__budget"))


def test_values_with_expressions_and_annotations(staff) -> None:
    rows = list(
        Emp.objects.filter(dept__isnull=False).values("name", low=Lower("name")).order_by("low")
    )
    assert rows[0] == {"name": "Alice", "low": "alice"}
    assert [r["low"] for r in rows] == ["alice", "bob", "carol", "dave"]
    pairs = list(
        Emp.objects.annotate(double=dorm.F("salary") * 2)
        .order_by("-double")
        .values_list("double", "name")[:2]
    )
    assert pairs == [(240, "Eve"), (200, "Alice")]


def test_distinct_with_order_on_related_field(staff) -> None:
    qs = Dept.objects.filter(emps__salary__gt=0).distinct().order_by("name")
    assert [d.name for d in qs] == ["Engineering", "Ops"]
    assert qs.count() == 2
    assert Emp.objects.values("dept").distinct().count() == 3


def test_aggregate_on_date_and_decimal(staff) -> None:
    result = Emp.objects.aggregate(
        first=dorm.Min("born"), last=dorm.Max("hired"), total=dorm.Sum("rate")
    )
    assert result == {
        "first": datetime.date(1970, 6, 15),
        "last": datetime.datetime(2021, 7, 1, 8, 0, tzinfo=UTC),
        "total": Decimal("5.00"),
    }
    assert isinstance(result["total"], Decimal)
    avg = Emp.objects.aggregate(a=dorm.Avg("rate"))["a"]
    assert avg == Decimal("1.00")


def test_having_mixed_with_plain_conditions(staff) -> None:
    depts = Dept.objects.annotate(n=dorm.Count("emps"))
    assert sorted(d.name for d in depts.filter(dorm.Q(n=0) | dorm.Q(name="Ops"))) == [
        "Empty",
        "Ops",
    ]
    plus = Dept.objects.annotate(m=dorm.Count("emps") + 1).filter(m__gt=1)
    assert sorted(d.name for d in plus) == ["Engineering", "Ops"]
    assert sorted(d.name for d in depts.exclude(n__gt=0)) == ["Empty"]
    hidden = Dept.objects.alias(n=dorm.Count("emps")).filter(n__gte=1).order_by("-budget")
    assert [d.name for d in hidden] == ["Engineering", "Ops"]
    assert "n" not in hidden[0].__dict__


def test_annotation_over_filtered_join_counts_once(staff) -> None:
    qs = Dept.objects.filter(emps__salary__gte=60).annotate(n=dorm.Count("emps"))
    # The annotation reuses the filter's join, as in Django: only matching employees count.
    assert dict(qs.values_list("name", "n")) == {"Engineering": 2, "Ops": 1}


def test_or_across_nullable_join_promotes_to_outer(staff) -> None:
    Q = dorm.Q
    assert names(Emp.objects.filter(Q(dept__name="Ops") | Q(salary__gt=100))) == [
        "Dave",
        "Eve",
        "carol",
    ]
    assert names(
        Emp.objects.filter(salary__gt=0).filter(Q(dept__budget__gt=500) | Q(dept__isnull=True))
    ) == ["Alice", "Bob", "Eve"]
    assert names(
        Emp.objects.filter(dept__budget__gt=0).filter(Q(dept__name="Ops") | Q(salary__gt=100))
    ) == ["Dave", "carol"]
    assert names(Emp.objects.filter(~Q(dept__name="Ops") & ~Q(dept__name="Engineering"))) == ["Eve"]
    assert names(Emp.objects.order_by("dept__name").filter(salary__gt=100)) == ["Eve"]
