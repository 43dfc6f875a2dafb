"""EXPLAIN on each vendor, reduced to what identifies a plan.

What is kept: node types, the tables and indexes used, join methods and conditions. What
is stripped, because it changes between runs or machines without the plan changing:
costs, row and width estimates, SQLite's node ids, and numbered temporary objects.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

from dorm.contrib.plan_drift.exceptions import PlanDriftError

__all__ = ["explain", "normalize_postgresql", "normalize_sqlite", "statement_of"]

_nonce = itertools.count(1)
_STATEMENT_START = ("SELECT", "WITH", "INSERT", "UPDATE", "DELETE", "VALUES", "TABLE")
_VOLATILE = [
    (re.compile(r"\s*\((?:cost|actual)[^)]*\)"), ""),
    (re.compile(r"\b(rows|width|loops)=\d+(\.\d+)?"), ""),
    (re.compile(r"\bpg_temp_\d+"), "pg_temp"),
    (re.compile(r"\s+$"), ""),
]


def statement_of(sql: Any, params: Sequence[Any] | None, using: str) -> tuple[str, list[Any]]:
    """``(sql, params)`` of a SQL string or a QuerySet, checked: one statement, no EXPLAIN."""
    query = getattr(sql, "query", None)
    if query is not None and hasattr(query, "get_compiler"):
        if params:
            raise ValueError("params: a QuerySet carries its own parameters; pass params=None")
        compiled, compiled_params = query.get_compiler(using).as_sql()
        return compiled, list(compiled_params)
    if not isinstance(sql, str):
        raise TypeError(f"sql: expected a SQL string or a QuerySet, got {type(sql).__name__}")
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise ValueError("sql: empty statement")
    first = text.split(None, 1)[0].upper()
    if first not in _STATEMENT_START:
        raise ValueError(
            f"sql: {first!r} cannot be explained; expected a statement starting with one of "
            f"{', '.join(_STATEMENT_START)} (without EXPLAIN: it is added)"
        )
    if ";" in text:
        raise ValueError("sql: only one statement can be explained; remove the ';'")
    if params is not None and (isinstance(params, str | bytes) or not isinstance(params, Sequence)):
        raise TypeError(f"params: expected a list or tuple, got {type(params).__name__}")
    return text, list(params or [])


def normalize_postgresql(lines: Sequence[str]) -> tuple[str, ...]:
    """PostgreSQL ``EXPLAIN (COSTS OFF)`` text without its volatile parts."""
    out = []
    for line in lines:
        for pattern, replacement in _VOLATILE:
            line = pattern.sub(replacement, line)
        if line.strip():
            out.append(line)
    return tuple(out)


def normalize_sqlite(rows: Sequence[Sequence[Any]]) -> tuple[str, ...]:
    """SQLite ``EXPLAIN QUERY PLAN`` rows ``(id, parent, notused, detail)`` as an indented
    tree of details (the ids, which differ from run to run, are dropped)."""
    children: dict[int, list[tuple[int, str]]] = {}
    for node_id, parent, _unused, detail in rows:
        children.setdefault(int(parent), []).append((int(node_id), str(detail)))
    out: list[str] = []

    def walk(parent: int, depth: int) -> None:
        for node_id, detail in sorted(children.get(parent, [])):
            out.append("  " * depth + detail)
            walk(node_id, depth + 1)

    walk(0, 0)
    return tuple(out)


def explain(sql: str, params: Sequence[Any], using: str) -> tuple[tuple[str, ...], str]:
    """Run EXPLAIN on ``using``; return the normalized plan lines and the vendor."""
    from dorm.db.connection import get_connection
    from dorm.exceptions import DatabaseError

    conn = get_connection(using)
    vendor = conn.vendor
    try:
        if vendor == "postgresql":
            rows = conn.fetchall(f"EXPLAIN (COSTS OFF) {sql}", params)
            return normalize_postgresql([str(r[0]) for r in rows]), vendor
        if vendor == "sqlite":
            # sqlite3 caches prepared statements by text, and a cached EXPLAIN keeps the
            # plan it was prepared with after the schema changed (an index dropped): a
            # statement text of its own each time forces a fresh plan.
            nonce = next(_nonce)
            rows = conn.fetchall(f"EXPLAIN QUERY PLAN /* plan_drift {nonce} */ {sql}", params)
            return normalize_sqlite(rows), vendor
    except DatabaseError as exc:
        raise PlanDriftError(f"EXPLAIN failed on {using!r} ({vendor}): {exc}") from exc
    raise PlanDriftError(
        f"plan drift: EXPLAIN of the {vendor!r} backend of {using!r} is not supported "
        f"(postgresql and sqlite are)"
    )
