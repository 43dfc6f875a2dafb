"""Window expressions on SQLite and PostgreSQL, checked against values computed in Python."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

import dorm
from dorm.functions import (
    CumeDist,
    DenseRank,
    FirstValue,
    Lag,
    LastValue,
    Lead,
    NthValue,
    NTile,
    PercentRank,
    Rank,
    RowNumber,
)
from dorm.test import CaptureQueriesContext


class Worker(dorm.Model):
    name = dorm.CharField(max_length=20)
    dept = dorm.CharField(max_length=20)
    salary = dorm.IntegerField()

    class Meta:
        app_label = "t_window"


MODELS = [Worker]
pytestmark = pytest.mark.usefixtures("clean_tables")

STAFF = [
    ("ann", "eng", 300),
    ("bob", "eng", 200),
    ("cid", "eng", 200),
    ("dan", "eng", 100),
    ("eve", "ops", 150),
    ("fay", "ops", 90),
    ("gus", "sales", 120),
]


@pytest.fixture
def staff(db: Any) -> None:
    for name, dept, salary in STAFF:
        Worker.objects.create(name=name, dept=dept, salary=salary)


def partitions() -> dict[str, list[tuple[str, str, int]]]:
    """Rows per department, by salary descending then name (the windows' order)."""
    ordered = sorted(STAFF, key=lambda r: (r[1], -r[2], r[0]))
    return {d: list(rows) for d, rows in itertools.groupby(ordered, key=lambda r: r[1])}


def by_name(qs: Any, field: str = "w") -> dict[str, Any]:
    return dict(qs.values_list("name", field))


def win(func: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("partition_by", "dept")
    kwargs.setdefault("order_by", ["-salary", "name"])
    return dorm.Window(func, **kwargs)


def py_rank(rows: list[Any], dense: bool) -> dict[str, int]:
    out: dict[str, int] = {}
    rank = dense_rank = 0
    last = None
    for i, (name, _d, salary) in enumerate(rows, 1):
        if salary != last:
            rank, dense_rank, last = i, dense_rank + 1, salary
        out[name] = dense_rank if dense else rank
    return out


def test_ranking_functions(staff: Any) -> None:
    parts = partitions()
    rank_only = {"partition_by": "dept", "order_by": "-salary"}
    want_row = {r[0]: i for rows in parts.values() for i, r in enumerate(rows, 1)}
    assert by_name(Worker.objects.annotate(w=win(RowNumber()))) == want_row
    want_rank = {k: v for rows in parts.values() for k, v in py_rank(rows, False).items()}
    assert by_name(Worker.objects.annotate(w=dorm.Window(Rank(), **rank_only))) == want_rank
    want_dense = {k: v for rows in parts.values() for k, v in py_rank(rows, True).items()}
    assert by_name(Worker.objects.annotate(w=dorm.Window(DenseRank(), **rank_only))) == want_dense
    percent = by_name(Worker.objects.annotate(w=dorm.Window(PercentRank(), **rank_only)))
    for rows in parts.values():
        for name, _d, _s in rows:
            n = len(rows)
            expected = 0.0 if n == 1 else (want_rank[name] - 1) / (n - 1)
            assert percent[name] == pytest.approx(expected)
    cume = by_name(Worker.objects.annotate(w=dorm.Window(CumeDist(), **rank_only)))
    for rows in parts.values():
        for name, _d, salary in rows:
            assert cume[name] == pytest.approx(sum(r[2] >= salary for r in rows) / len(rows))
    tiles = by_name(Worker.objects.annotate(w=dorm.Window(NTile(3), order_by=["salary", "name"])))
    ordered = sorted(STAFF, key=lambda r: (r[2], r[0]))
    # 7 rows in 3 buckets: sizes 3, 2, 2 (the first buckets take the remainder).
    assert tiles == {r[0]: 1 if i < 3 else 2 if i < 5 else 3 for i, r in enumerate(ordered)}


def test_offset_and_value_functions(staff: Any) -> None:
    parts = partitions()
    lag = by_name(Worker.objects.annotate(w=win(Lag("salary"))))
    lead = by_name(Worker.objects.annotate(w=win(Lead("salary", offset=2, default=-1))))
    first = by_name(Worker.objects.annotate(w=win(FirstValue("name"))))
    last = by_name(Worker.objects.annotate(w=win(LastValue("name"), frame=dorm.RowRange())))
    second = by_name(Worker.objects.annotate(w=win(NthValue("name", 2), frame=dorm.RowRange())))
    for rows in parts.values():
        for i, (name, _d, _s) in enumerate(rows):
            assert lag[name] == (rows[i - 1][2] if i else None)
            assert lead[name] == (rows[i + 2][2] if i + 2 < len(rows) else -1)
            assert first[name] == rows[0][0]
            assert last[name] == rows[-1][0]
            assert second[name] == (rows[1][0] if len(rows) > 1 else None)


def test_aggregates_over_windows_and_frames(staff: Any) -> None:
    totals = by_name(
        Worker.objects.annotate(w=dorm.Window(dorm.Sum("salary"), partition_by="dept"))
    )
    for name, dept, _s in STAFF:
        assert totals[name] == sum(r[2] for r in STAFF if r[1] == dept)
    running = Worker.objects.annotate(
        w=dorm.Window(dorm.Sum("salary"), order_by=["salary", "name"], frame=dorm.RowRange(end=0))
    )
    ordered = sorted(STAFF, key=lambda r: (r[2], r[0]))
    sums = list(itertools.accumulate(r[2] for r in ordered))
    assert by_name(running) == {r[0]: s for r, s in zip(ordered, sums, strict=True)}
    moving = Worker.objects.annotate(
        w=dorm.Window(dorm.Avg("salary"), order_by=["salary", "name"], frame=dorm.RowRange(-1, 1))
    )
    got = by_name(moving)
    for i, r in enumerate(ordered):
        window = [x[2] for x in ordered[max(0, i - 1) : i + 2]]
        assert float(got[r[0]]) == pytest.approx(sum(window) / len(window))
    peers = Worker.objects.annotate(
        w=dorm.Window(dorm.Count("id"), order_by="salary", frame=dorm.ValueRange(end=0))
    )
    assert by_name(peers) == {r[0]: sum(x[2] <= r[2] for x in STAFF) for r in STAFF}
    # No GROUP BY: one row per worker, and the aggregate is still per partition.
    assert (
        Worker.objects.annotate(w=dorm.Window(dorm.Max("salary"), partition_by="dept")).count() == 7
    )


def test_filtering_on_a_window_wraps_the_query(staff: Any) -> None:
    ranked = Worker.objects.annotate(w=win(RowNumber()))
    top2 = ranked.filter(w__lte=2).order_by("dept", "w")
    want = [r[0] for rows in partitions().values() for r in rows[:2]]
    with CaptureQueriesContext() as ctx:
        assert list(top2.values_list("name", flat=True)) == want
    assert ctx.captured_queries[0]["sql"].count("SELECT") == 2
    assert top2.count() == len(want)
    assert [w.name for w in top2[1:3]] == want[1:3]
    assert top2.exists()
    both = ranked.filter(w=1, salary__gt=100)
    assert sorted(both.values_list("name", flat=True)) == sorted(
        rows[0][0] for rows in partitions().values() if rows[0][2] > 100
    )
    either = ranked.filter(dorm.Q(w=1) | dorm.Q(name="fay")).order_by("name")
    assert [w.name for w in either] == sorted(
        {rows[0][0] for rows in partitions().values()} | {"fay"}
    )
    assert sorted(ranked.exclude(w=1).values_list("name", flat=True)) == sorted(
        r[0] for rows in partitions().values() for r in rows[1:]
    )
    # A plain condition filters the rows the window sees, as in SQL.
    inner = Worker.objects.filter(salary__lt=300).annotate(w=win(RowNumber())).filter(w=1)
    assert sorted(inner.values_list("name", flat=True)) == ["bob", "eve", "gus"]


def test_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="Rank\\(\\) needs order_by"):
        dorm.Window(Rank(), partition_by="dept")
    with pytest.raises(ValueError, match="RowNumber\\(\\) needs order_by"):
        dorm.Window(RowNumber())
    with pytest.raises(ValueError, match="Lower cannot be computed over a window"):
        from dorm.functions import Lower

        dorm.Window(Lower("name"), order_by="name")
    with pytest.raises(ValueError, match="start \\(2\\) is after end \\(1\\)"):
        dorm.RowRange(2, 1)
    with pytest.raises(TypeError, match="RowRange\\(start=...\\): an int"):
        dorm.RowRange("1 PRECEDING; DROP TABLE x")
    with pytest.raises(ValueError, match="NTile: 'num_buckets' must be an int >= 1"):
        NTile(0)


def test_windows_in_async_iteration(staff: Any) -> None:
    async def main() -> list[tuple[str, int]]:
        qs = Worker.objects.annotate(w=win(Rank())).filter(w=1).order_by("dept")
        return [(w.name, w.w) async for w in qs]

    assert asyncio.run(main()) == [(rows[0][0], 1) for rows in partitions().values()]
