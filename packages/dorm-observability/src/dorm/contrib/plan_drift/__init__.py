"""Plan drift: notice when the database starts running a query differently.

Usage::

    import dorm
    from dorm.contrib import plan_drift

    dorm.configure(DATABASES={...}, PLAN_DRIFT_PATH="plan_drift.json")
    plan_drift.record_baseline("books-by-author", Book.objects.filter(author_id=1))
    ...                                                # a migration drops an index
    result = plan_drift.compare("books-by-author")     # explained again
    if result.drifted:
        print("\\n".join(result.diff()))
    plan_drift.history("books-by-author")              # the last 50 comparisons
    plan_drift.clear_history()

In CI, ``dorm plan-drift check`` compares every recorded tag and exits 1 when one drifted.
Plans come from ``EXPLAIN (COSTS OFF)`` on PostgreSQL and ``EXPLAIN QUERY PLAN`` on SQLite,
without costs, row estimates or node ids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dorm.plugins import lazy_exports

if TYPE_CHECKING:
    from dorm.contrib.plan_drift.drift import (
        HISTORY_SIZE,
        CompareResult,
        clear_history,
        compare,
        history,
        record_baseline,
        store_path,
        tags,
    )
    from dorm.contrib.plan_drift.exceptions import (
        BaselineMissingError,
        PlanDriftError,
    )

# Loaded on first use: the plugin's entry point imports this package, and a plugin must
# add nothing to the cost of ``import dorm`` (or of defining a model) until it is used.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "HISTORY_SIZE": "dorm.contrib.plan_drift.drift",
        "CompareResult": "dorm.contrib.plan_drift.drift",
        "clear_history": "dorm.contrib.plan_drift.drift",
        "compare": "dorm.contrib.plan_drift.drift",
        "history": "dorm.contrib.plan_drift.drift",
        "record_baseline": "dorm.contrib.plan_drift.drift",
        "store_path": "dorm.contrib.plan_drift.drift",
        "tags": "dorm.contrib.plan_drift.drift",
        "BaselineMissingError": "dorm.contrib.plan_drift.exceptions",
        "PlanDriftError": "dorm.contrib.plan_drift.exceptions",
    },
)


__version__ = "1.0.0"

__all__ = [
    "HISTORY_SIZE",
    "BaselineMissingError",
    "CompareResult",
    "PlanDriftError",
    "__version__",
    "clear_history",
    "compare",
    "history",
    "record_baseline",
    "store_path",
    "tags",
]
