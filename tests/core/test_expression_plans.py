"""The cache of SELECTs whose only varying parts are values bound by expressions
(dorm.sql.expression_plans), on both backends.

A repeated shape reuses its SQL with the new bound values and reads the right rows back;
anything the cache does not know bypasses it; shapes that differ by class, field, value
type or direction do not share an entry; plugins, patterns and connection resets empty it;
a shape whose binder does not reproduce the compiler is compiled, once per query.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import dorm
from dorm import plugins
from dorm.db.utils import add_sensitive_pattern, reset_sensitive_patterns
from dorm.exceptions import ValidationError
from dorm.expressions import Col, Expression, F
from dorm.math_functions import Abs
from dorm.plugins import hookimpl
from dorm.sql import expression_plans
from dorm.sql.compiler import SQLCompiler
from dorm.test import CaptureQueriesContext


class Runner(dorm.Model):
    name = dorm.CharField(max_length=20)
    age = dorm.IntegerField()
    score = dorm.IntegerField(default=0)

    class Meta:
        app_label = "t_expr_plans"


MODELS = [Runner]
AGES = {"ann": 21, "bob": 34, "cy": 40, "dee": 58, "eve": 63}
SCORES = {"ann": 9, "bob": 1, "cy": 7, "dee": 3, "eve": 5}


class Gap(Expression):
    """``ABS(column - %s)``: how far a column is from a bound integer."""

    template = "ABS({} - {})"

    def __init__(self, name: str, target: Any) -> None:
        super().__init__(output_field=dorm.IntegerField())
        self.lhs = F(name)
        self.target = target

    def get_source_expressions(self) -> list[Any]:
        return [self.lhs]

    def set_source_expressions(self, exprs: Any) -> None:
        (self.lhs,) = exprs

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.lhs)
        value = self.lhs.output_field.get_db_prep_value(self.target)
        return self.template.format(column, connection.ops.placeholder), [*params, value]

    def plan_shape(self) -> Any:
        if type(self.lhs) is not F:
            return None
        return (self.lhs.name, type(self.target))

    def plan_binder(self) -> Any:
        if type(self.lhs) is not Col:
            return None
        prep = self.lhs.output_field.get_db_prep_value
        return lambda node: [prep(node.target)]


class SquaredGap(Gap):
    """Defines its own as_sql: compiled every time."""

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        column, _params = compiler.compile(self.lhs)
        value = self.lhs.output_field.get_db_prep_value(self.target)
        ph = connection.ops.placeholder
        return f"(({column} - {ph}) * ({column} - {ph}))", [value, value]


class DataOnlyGap(Gap):
    """A subclass that sets class data only (the template): eligible."""

    template = "ABS({} - {}) + 0"


class LyingGap(Gap):
    """Opts in itself, with a binder that does not reproduce the compiler's parameters."""

    def plan_shape(self) -> Any:
        return ("age",)

    def plan_binder(self) -> Any:
        return lambda node: [0]


def _nearest(target: int, field: str = "age") -> list[str]:
    values = AGES if field == "age" else SCORES
    return sorted(values, key=lambda n: (abs(values[n] - target), values[n]))


@pytest.fixture
def rows(clean_tables: Any) -> Iterator[None]:
    expression_plans.clear()
    Runner.objects.bulk_create([Runner(name=n, age=a, score=SCORES[n]) for n, a in AGES.items()])
    yield
    expression_plans.clear()


def _captured(fn: Any) -> list[dict[str, Any]]:
    with CaptureQueriesContext() as ctx:
        fn()
    return list(ctx.captured_queries)


def _top(target: Any, k: int = 2, by: type = Gap, field: str = "age") -> list[str]:
    return list(
        Runner.objects.order_by(by(field, target), "name").values_list("name", flat=True)[:k]
    )


def test_a_repeated_shape_reuses_its_sql_with_new_values(rows: None) -> None:
    for target in (20, 35, 41, 60, 64, 0, 100):
        assert _top(target) == _nearest(target)[:2], target
    assert expression_plans.size() == 1
    (first,) = _captured(lambda: _top(22))
    (second,) = _captured(lambda: _top(57))
    assert first["sql"] == second["sql"]
    assert tuple(first["params"]) == (22,) and tuple(second["params"]) == (57,)


def test_instances_values_tuples_and_iterators_each_have_a_plan(rows: None) -> None:
    for target in (30, 50):
        want = _nearest(target)
        objs = list(Runner.objects.order_by(Gap("age", target), "name")[:3])
        assert [r.name for r in objs] == want[:3]
        assert objs[0].age == AGES[want[0]] and objs[0].pk is not None
        dicts = list(Runner.objects.order_by(Gap("age", target)).values("name", "age")[:2])
        assert dicts == [{"name": n, "age": AGES[n]} for n in want[:2]]
        pairs = Runner.objects.order_by(Gap("age", target)).values_list("age", "name")[:2]
        assert list(pairs) == [(AGES[n], n) for n in want[:2]]
        streamed = Runner.objects.order_by(Gap("age", target), "name").iterator(chunk_size=2)
        assert [r.name for r in streamed] == want
        everything = list(Runner.objects.order_by(Gap("age", target), "name"))
        assert [r.name for r in everything] == want
    # Instances [:3], dicts, tuples, and the unsliced instances (iterator() and list()
    # run the same statement, in chunks or at once).
    assert expression_plans.size() == 4


def test_class_field_value_type_and_direction_are_part_of_the_shape(rows: None) -> None:
    for target in (25, 45):
        assert _top(target, 5) == _nearest(target)
        assert _top(target, 5, field="score") == _nearest(target, field="score")
        assert _top(str(target), 5) == _nearest(target)  # a str is converted, not compared
        squared = _top(target, 5, by=SquaredGap)
        assert squared == _nearest(target)
        assert _top(target, 5, by=DataOnlyGap) == _nearest(target)
        far = Runner.objects.order_by(Gap("age", target).desc(), "name")
        assert list(far.values_list("name", flat=True)) == _nearest(target)[::-1]
    # Gap(age, int), Gap(score, int), Gap(age, str), DataOnlyGap, Gap desc: five shapes;
    # SquaredGap defines its own as_sql, so it is compiled every time and has no entry.
    assert expression_plans.size() == 5


def test_queries_the_cache_does_not_know_bypass_it(rows: None) -> None:
    target = 36
    want = _nearest(target)
    filtered = Runner.objects.filter(score__gte=3).order_by(Gap("age", target))
    assert list(filtered.values_list("name", flat=True)) == [n for n in want if SCORES[n] >= 3]
    annotated = Runner.objects.annotate(g=Gap("age", target)).order_by("g", "name")
    assert [r.name for r in annotated] == want
    assert list(Runner.objects.order_by(Gap("age", target)).none()) == []
    core_func = Runner.objects.order_by(Abs(F("age") - target), "name")
    assert list(core_func.values_list("name", flat=True)) == want
    tagged = Runner.objects.order_by(Gap("age", target)).values_list("name", flat=True)
    tagged.query.marked_by_a_plugin = True  # type: ignore[attr-defined]
    assert expression_plans.select_shape(tagged.query) is None
    assert list(tagged) == want
    assert expression_plans.size() == 0


def test_a_binder_that_disagrees_with_the_compiler_is_never_used(
    rows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled = []
    real = SQLCompiler.as_sql

    def counting(self: SQLCompiler, *args: Any, **kwargs: Any) -> Any:
        compiled.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SQLCompiler, "as_sql", counting)
    for target in (22, 59, 41):
        compiled.clear()
        assert _top(target, by=LyingGap) == _nearest(target)[:2]
        # The first query compiles twice (once to check the binder); then once each.
        assert len(compiled) == (2 if target == 22 else 1)
    assert expression_plans.size() == 1  # the shape, remembered as uncacheable
    compiled.clear()
    assert _top(30) == _nearest(30)[:2]
    assert len(compiled) == 1  # a new cacheable shape: compiled once, then stored
    compiled.clear()
    assert _top(62) == _nearest(62)[:2]
    assert compiled == []


def test_a_bad_value_raises_as_without_the_cache(rows: None) -> None:
    with pytest.raises(ValidationError) as compiled:
        _top("not a number")  # no plan for (age, str) yet: the compiler raises
    assert expression_plans.size() == 0
    assert _top("40") == _nearest(40)[:2]  # stores the (age, str) shape
    assert expression_plans.size() == 1
    for _ in range(2):
        with pytest.raises(ValidationError) as planned:
            _top("not a number")  # the plan's binder raises
        assert str(planned.value) == str(compiled.value)
        assert _top("41") == _nearest(41)[:2]


class GapMarker:
    """Renders Gap with a marker comment: entries built without it must not be reused."""

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor

    @hookimpl
    def dorm_register_vendor_sql(self) -> list[tuple[type, str, Any]]:
        def render(node: Gap, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
            sql, params = node.as_sql(compiler, connection)
            return f"{sql} /* marked */", params

        return [(Gap, self.vendor, render)]


def test_registering_a_plugin_invalidates(rows: None, backend: Any) -> None:
    _top(30)
    assert expression_plans.size() == 1
    plugins.register(GapMarker(backend.vendor), name="t-expr-plan-marker")
    try:
        for target in (30, 50, 60):
            (query,) = _captured(lambda target=target: _top(target))
            assert "/* marked */" in query["sql"]
            assert _top(target) == _nearest(target)[:2]
    finally:
        plugins.unregister("t-expr-plan-marker")
    for target in (30, 50):
        (query,) = _captured(lambda target=target: _top(target))
        assert "/* marked */" not in query["sql"]
        assert _top(target) == _nearest(target)[:2]


def test_sensitive_patterns_and_connection_resets_empty_it(rows: None, db: Any) -> None:
    _top(30)
    assert expression_plans.size() == 1
    try:
        add_sensitive_pattern("t_expr_plans_nothing")
        assert _top(44) == _nearest(44)[:2]
        assert expression_plans.size() == 1  # emptied, then this shape stored again
    finally:
        reset_sensitive_patterns()
    dorm.configure(DATABASES={"default": db.settings})
    assert expression_plans.size() == 0
    assert _top(61) == _nearest(61)[:2]


def test_the_cache_is_bounded(rows: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(expression_plans, "MAX_ENTRIES", 3)
    for k in range(1, 6):
        assert _top(33, k) == _nearest(33)[:k]
        assert expression_plans.size() <= 3
    assert expression_plans.size() == 3
    assert _top(50, 1) == _nearest(50)[:1]
