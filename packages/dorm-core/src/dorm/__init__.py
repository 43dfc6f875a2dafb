"""dorm: a small Django-style ORM with plugins."""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)  # adds the dorm/ dirs of other distributions

__version__ = "4.3.0"

from dorm import signals, transaction
from dorm.conf import configure, settings
from dorm.db.connection import awarmup_pool, warmup_pool
from dorm.expressions import (
    Avg,
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    RawSQL,
    Subquery,
    Sum,
    Value,
    When,
)
from dorm.models import *  # noqa: F403
from dorm.models import __all__ as _models_all
from dorm.models.prefetch import aprefetch_related_objects, prefetch_related_objects
from dorm.window import RowRange, ValueRange, Window

__all__ = [
    "Avg",
    "Case",
    "Count",
    "Exists",
    "ExpressionWrapper",
    "F",
    "Max",
    "Min",
    "OuterRef",
    "Q",
    "RawSQL",
    "RowRange",
    "Subquery",
    "Sum",
    "Value",
    "ValueRange",
    "When",
    "Window",
    "__version__",
    "aprefetch_related_objects",
    "awarmup_pool",
    "configure",
    "prefetch_related_objects",
    "settings",
    "signals",
    "transaction",
    "warmup_pool",
    *_models_all,
]
