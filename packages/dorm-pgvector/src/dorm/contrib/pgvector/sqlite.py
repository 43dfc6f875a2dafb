"""Vector distance functions on each SQLite connection: sqlite-vec, or Python.

Compiled SQL is the same on every SQLite connection (the plan cache shares it):
``vec_distance_l2`` and ``vec_distance_cosine`` come from sqlite-vec when the interpreter
can load extensions and sqlite-vec is installed, and are Python functions of the same
names otherwise. sqlite-vec has no inner product, so ``dorm_vec_negative_inner_product``
is always a Python function. Both paths read the same float32 blobs.

The setting ``PGVECTOR_SQLITE_VEC`` (default True) set to False keeps the Python path.
"""

from __future__ import annotations

import importlib
import logging
import math
import operator
import struct
from typing import Any

__all__ = [
    "COSINE",
    "L2",
    "NEGATIVE_INNER_PRODUCT",
    "cosine_distance",
    "l2_distance",
    "negative_inner_product",
    "register_functions",
]

log = logging.getLogger("dorm.contrib.pgvector")

L2 = "vec_distance_l2"
COSINE = "vec_distance_cosine"
NEGATIVE_INNER_PRODUCT = "dorm_vec_negative_inner_product"


def _pair(a: bytes, b: bytes) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if len(a) != len(b):
        raise ValueError(f"vector sizes differ: {len(a) // 4} and {len(b) // 4} dimensions")
    n = len(a) // 4
    return struct.unpack(f"<{n}f", a), struct.unpack(f"<{n}f", b)


def l2_distance(a: bytes | None, b: bytes | None) -> float | None:
    """Euclidean distance of two float32 blobs (None when either is NULL)."""
    if a is None or b is None:
        return None
    x, y = _pair(a, b)
    return math.dist(x, y)


def cosine_distance(a: bytes | None, b: bytes | None) -> float | None:
    """``1 - cos(angle)``; None for NULL or a zero vector (pgvector gives NaN there)."""
    if a is None or b is None:
        return None
    x, y = _pair(a, b)
    norms = math.hypot(*x) * math.hypot(*y)
    if norms == 0.0:
        return None
    dot: float = sum(map(operator.mul, x, y))
    return 1.0 - dot / norms


def negative_inner_product(a: bytes | None, b: bytes | None) -> float | None:
    """``-(a · b)``, pgvector's ``<#>``: smaller is more similar."""
    if a is None or b is None:
        return None
    x, y = _pair(a, b)
    dot: float = sum(map(operator.mul, x, y))
    return -dot


def _load_sqlite_vec(connection: Any) -> bool:
    """Load sqlite-vec into ``connection``; False when it or extension loading is missing."""
    try:
        # An optional dependency without type hints: imported by name.
        sqlite_vec: Any = importlib.import_module("sqlite_vec")
    except ImportError:
        return False
    enable = getattr(connection, "enable_load_extension", None)
    if enable is None:  # an interpreter built without loadable extensions
        return False
    try:
        enable(True)
        try:
            sqlite_vec.load(connection)
        finally:
            enable(False)
    except Exception as exc:  # the driver's OperationalError, or a missing shared object
        log.warning("sqlite-vec is installed but did not load (%s); using Python functions", exc)
        return False
    return True


def register_functions(connection: Any, use_extension: bool = True) -> str:
    """Give ``connection`` the distance functions; return ``"sqlite-vec"`` or ``"python"``."""
    connection.create_function(
        NEGATIVE_INNER_PRODUCT, 2, negative_inner_product, deterministic=True
    )
    if use_extension and _load_sqlite_vec(connection):
        path = "sqlite-vec"
    else:
        connection.create_function(L2, 2, l2_distance, deterministic=True)
        connection.create_function(COSINE, 2, cosine_distance, deterministic=True)
        path = "python"
    log.debug("vector distance functions on a new SQLite connection: %s", path)
    return path
