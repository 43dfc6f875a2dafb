"""Plan drift on both vendors: baselines, drift after an index is dropped, the bounded
history, and ``dorm plan-drift check`` for CI."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm.cli import main as dorm_main
from dorm.conf import settings
from dorm.contrib import plan_drift
from dorm.contrib.plan_drift.explain import normalize_postgresql
from dorm.db.connection import get_connection

INDEX = "obs_drift_order_customer_idx"


class Order(dorm.Model):
    customer = dorm.IntegerField()
    total = dorm.IntegerField(default=0)

    class Meta:
        app_label = "obs_drift"


MODELS = [Order]


@pytest.fixture
def store(clean_tables: Any, tmp_path: Path) -> Any:
    """A baselines file of the test's own, and the index the queries use."""
    conn = get_connection()
    qn = conn.ops.quote_name
    conn.execute(f"CREATE INDEX {qn(INDEX)} ON {qn('obs_drift_order')} ({qn('customer')})", ())
    Order.objects.bulk_create([Order(customer=i % 50, total=i) for i in range(2000)])
    if clean_tables.vendor == "postgresql":
        conn.execute("ANALYZE obs_drift_order", ())
    settings.PLAN_DRIFT_PATH = str(tmp_path / "plans.json")
    yield clean_tables
    conn.execute(f"DROP INDEX IF EXISTS {qn(INDEX)}", ())
    settings.PLAN_DRIFT_PATH = None


def _drop_index() -> None:
    get_connection().execute(f"DROP INDEX {get_connection().ops.quote_name(INDEX)}", ())


def _sql() -> str:
    return (
        f"SELECT id, total FROM obs_drift_order WHERE customer = {get_connection().ops.placeholder}"
    )


def test_drift_is_detected_after_the_index_is_dropped(store: Any) -> None:
    baseline = plan_drift.record_baseline("by-customer", _sql(), [7])
    assert INDEX in baseline
    same = plan_drift.compare("by-customer", _sql(), [7])
    assert (same.tag, same.drifted, same.baseline, same.current) == (
        "by-customer",
        False,
        baseline,
        baseline,
    )
    assert same.diff() == []
    _drop_index()
    drifted = plan_drift.compare("by-customer", _sql(), [7])
    assert drifted.drifted and drifted.baseline == baseline
    assert INDEX not in drifted.current
    assert any(line.startswith("-") and INDEX in line for line in drifted.diff())
    assert [r.drifted for r in plan_drift.history("by-customer")] == [False, True]


def test_volatile_parts_are_stripped(store: Any) -> None:
    plan = plan_drift.record_baseline("q", _sql(), [3])
    for volatile in ("cost=", "rows=", "width="):
        assert volatile not in plan
    if store.vendor == "postgresql":
        # The costed EXPLAIN, normalized, is the same plan as the cost-free one.
        rows = get_connection().fetchall(f"EXPLAIN {_sql()}", [3])
        costed = [r[0] for r in rows]
        assert any("cost=" in line for line in costed)
        assert "\n".join(normalize_postgresql(costed)) == plan
    else:
        # SQLite's rows are (node id, parent id, unused, detail): only the details stay.
        raw = get_connection().fetchall(f"EXPLAIN QUERY PLAN {_sql()}", [3])
        assert all(isinstance(r[0], int) for r in raw)
        assert plan.splitlines() == [str(r[3]) for r in raw]


def test_a_queryset_can_be_recorded_and_compared(store: Any) -> None:
    qs = Order.objects.filter(customer=5).only("id")
    plan = plan_drift.record_baseline("qs", qs)
    assert INDEX in plan
    assert not plan_drift.compare("qs").drifted  # the stored statement, explained again
    _drop_index()
    assert plan_drift.compare("qs", qs).drifted


def test_history_is_a_ring_of_fifty_per_tag_and_can_be_cleared(store: Any) -> None:
    plan_drift.record_baseline("a", _sql(), [1])
    plan_drift.record_baseline("b", _sql(), [2])
    for _ in range(55):
        plan_drift.compare("a")
    plan_drift.compare("b")
    assert len(plan_drift.history("a")) == plan_drift.HISTORY_SIZE == 50
    everything = plan_drift.history()
    assert len(everything) == 51 and {r.tag for r in everything} == {"a", "b"}
    assert [r.at for r in everything] == sorted(r.at for r in everything)
    plan_drift.clear_history("a")
    assert plan_drift.history("a") == [] and len(plan_drift.history("b")) == 1
    plan_drift.compare("a")
    plan_drift.clear_history()
    assert plan_drift.history() == []
    assert plan_drift.tags() == ["a", "b"]  # baselines survive
    stored = json.loads(Path(settings.PLAN_DRIFT_PATH).read_text())
    assert stored["tags"]["a"]["params"] == [1] and stored["tags"]["a"]["history"] == []


def test_concurrent_compares_keep_a_valid_bounded_file(store: Any) -> None:
    plan_drift.record_baseline("t", _sql(), [1])
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(15):
                plan_drift.compare("t")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(plan_drift.history("t")) == 50


def test_cli_check_exits_non_zero_when_a_tag_drifted(
    store: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_drift.record_baseline("orders-by-customer", _sql(), [9])
    plan_drift.record_baseline("one-order", "SELECT total FROM obs_drift_order WHERE id = 1")
    path = settings.PLAN_DRIFT_PATH
    assert dorm_main(["plan-drift", "check", "--path", path]) == 0
    out = capsys.readouterr().out
    assert "ok       orders-by-customer" in out and "0 of 2 plan(s) drifted" in out
    _drop_index()
    assert dorm_main(["plan-drift", "check", "--path", path]) == 1
    out = capsys.readouterr().out
    assert "DRIFTED  orders-by-customer" in out and "ok       one-order" in out
    assert "1 of 2 plan(s) drifted" in out and INDEX in out
    assert dorm_main(["plan-drift", "check", "--path", path, "--tag", "one-order"]) == 0
    assert dorm_main(["plan-drift", "list", "--path", path]) == 0
    assert "orders-by-customer  DRIFTED" in capsys.readouterr().out
    assert dorm_main(["plan-drift", "check", "--path", path, "--tag", "nope"]) != 0
    assert "no baseline for tag(s) 'nope'" in capsys.readouterr().err


def test_errors_name_what_is_wrong(store: Any, tmp_path: Path) -> None:
    with pytest.raises(plan_drift.BaselineMissingError, match="no baseline recorded for tag 'x'"):
        plan_drift.compare("x")
    with pytest.raises(ValueError, match="tag: expected a non-empty string"):
        plan_drift.record_baseline("", _sql(), [1])
    with pytest.raises(ValueError, match="'DROP' cannot be explained"):
        plan_drift.record_baseline("t", "DROP TABLE obs_drift_order")
    with pytest.raises(ValueError, match="only one statement"):
        plan_drift.record_baseline("t", "SELECT 1; DELETE FROM obs_drift_order")
    with pytest.raises(TypeError, match=r"params\[0\]: bytes cannot be stored"):
        plan_drift.record_baseline("t", _sql(), [b"x"])
    with pytest.raises(plan_drift.PlanDriftError, match="EXPLAIN failed on 'default'"):
        plan_drift.record_baseline("t", "SELECT * FROM no_such_table")
    assert Order.objects.count() == 2000  # nothing was executed for real
    Path(settings.PLAN_DRIFT_PATH).write_text("{not json")
    with pytest.raises(plan_drift.PlanDriftError, match="not valid JSON"):
        plan_drift.tags()
