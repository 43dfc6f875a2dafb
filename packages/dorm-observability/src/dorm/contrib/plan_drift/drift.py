"""Plan drift: record a query's EXPLAIN plan as a baseline, then tell when it changes.

Baselines and the history live in one JSON file, ``settings.PLAN_DRIFT_PATH`` (default
``plan_drift.json`` in the working directory), so that a baseline recorded on a
developer's machine can be committed and checked in CI with ``dorm plan-drift check``.
A baseline keeps the statement, its parameters and the alias, to be explained again; the
parameters are stored as JSON, so they must be JSON values. Writes go through a temporary
file and an atomic rename; a lock serialises the threads of one process.
"""

from __future__ import annotations

import datetime
import difflib
import json
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dorm.contrib.plan_drift.exceptions import BaselineMissingError, PlanDriftError
from dorm.contrib.plan_drift.explain import explain, statement_of

__all__ = [
    "HISTORY_SIZE",
    "CompareResult",
    "clear_history",
    "compare",
    "history",
    "record_baseline",
    "store_path",
    "tags",
]

#: Entries kept per tag; the oldest go first.
HISTORY_SIZE = 50
_FORMAT = 1
_lock = threading.RLock()


@dataclass(frozen=True)
class CompareResult:
    """One comparison of a tag's current plan with its baseline (plans as text lines)."""

    tag: str
    drifted: bool
    baseline: str
    current: str
    at: datetime.datetime

    def diff(self) -> list[str]:
        """The unified diff from the baseline to the current plan (empty when equal)."""
        return list(
            difflib.unified_diff(
                self.baseline.splitlines(),
                self.current.splitlines(),
                "baseline",
                "current",
                lineterm="",
            )
        )


def store_path() -> Path:
    """The JSON file of baselines and history (``settings.PLAN_DRIFT_PATH``)."""
    from dorm.conf import settings

    try:
        configured = settings.PLAN_DRIFT_PATH
    except AttributeError:
        configured = None
    if configured is None:
        return Path("plan_drift.json")
    if not isinstance(configured, str | os.PathLike):
        raise TypeError(
            f"settings.PLAN_DRIFT_PATH: expected a file path, got {type(configured).__name__}"
        )
    return Path(configured)


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"format": _FORMAT, "tags": {}}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PlanDriftError(f"plan drift store {path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise PlanDriftError(
            f"plan drift store {path}: not a plan drift file (format {_FORMAT} expected)"
        )
    return data


def _save(path: Path, data: dict[str, Any]) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".plan_drift.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _check_tag(tag: object) -> str:
    if not isinstance(tag, str) or not tag.strip() or len(tag) > 200:
        raise ValueError(f"tag: expected a non-empty string of at most 200 characters, got {tag!r}")
    if any(ord(c) < 32 for c in tag):
        raise ValueError(f"tag {tag!r}: control characters are not allowed")
    return tag


def _json_params(params: list[Any]) -> list[Any]:
    for i, value in enumerate(params):
        if value is not None and not isinstance(value, bool | int | float | str):
            raise TypeError(
                f"params[{i}]: {type(value).__name__} cannot be stored with a baseline; pass "
                f"JSON values (str, int, float, bool, None), e.g. str(value)"
            )
    return params


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def record_baseline(
    tag: str, sql: Any, params: Sequence[Any] | None = None, using: str = "default"
) -> str:
    """Explain ``sql`` on ``using`` and store its plan as the baseline of ``tag``.

    ``sql`` is a statement with the backend's placeholders (``%s`` on PostgreSQL, ``?`` on
    SQLite) or a QuerySet. A new baseline for a tag replaces the old one; the tag's
    history is kept. Returns the normalized plan.
    """
    tag = _check_tag(tag)
    text, bound = statement_of(sql, params, using)
    _json_params(bound)
    plan, vendor = explain(text, bound, using)
    with _lock:
        path = store_path()
        data = _load(path)
        old = data["tags"].get(tag, {})
        data["tags"][tag] = {
            "sql": text,
            "params": bound,
            "using": using,
            "vendor": vendor,
            "plan": list(plan),
            "recorded_at": _now().isoformat(),
            "history": old.get("history", []),
        }
        _save(path, data)
    return "\n".join(plan)


def compare(
    tag: str, sql: Any = None, params: Sequence[Any] | None = None, using: str | None = None
) -> CompareResult:
    """Explain ``sql`` again and compare the plan with the baseline of ``tag``.

    ``sql`` defaults to the statement stored with the baseline (and then ``params`` to its
    parameters), ``using`` to the baseline's alias. The result is appended to the tag's
    history (the last ``HISTORY_SIZE`` are kept).

    :raises BaselineMissingError: ``tag`` has no baseline.
    """
    tag = _check_tag(tag)
    with _lock:
        baseline = _load(store_path())["tags"].get(tag)
    if baseline is None:
        known = ", ".join(sorted(tags())) or "none"
        raise BaselineMissingError(
            f"plan drift: no baseline recorded for tag {tag!r} (known tags: {known}); call "
            f"record_baseline({tag!r}, sql) first"
        )
    alias = using or baseline["using"]
    if sql is None:
        text, bound = baseline["sql"], list(baseline["params"])
    else:
        text, bound = statement_of(sql, params, alias)
    plan, _vendor = explain(text, bound, alias)
    result = CompareResult(
        tag=tag,
        drifted=list(plan) != list(baseline["plan"]),
        baseline="\n".join(baseline["plan"]),
        current="\n".join(plan),
        at=_now(),
    )
    with _lock:
        path = store_path()
        data = _load(path)
        entry = data["tags"].get(tag)
        if entry is not None:
            ring = entry.setdefault("history", [])
            ring.append(
                {
                    "at": result.at.isoformat(),
                    "drifted": result.drifted,
                    "baseline": baseline["plan"],
                    "plan": list(plan),
                }
            )
            del ring[:-HISTORY_SIZE]
            _save(path, data)
    return result


def history(tag: str | None = None) -> list[CompareResult]:
    """The comparisons of ``tag``, oldest first; of every tag (by time) when ``tag`` is None."""
    with _lock:
        recorded = _load(store_path())["tags"]
    if tag is not None:
        _check_tag(tag)
        selected = {tag: recorded[tag]} if tag in recorded else {}
    else:
        selected = recorded
    results = [
        CompareResult(
            tag=name,
            drifted=bool(item["drifted"]),
            baseline="\n".join(item["baseline"]),
            current="\n".join(item["plan"]),
            at=datetime.datetime.fromisoformat(item["at"]),
        )
        for name, entry in selected.items()
        for item in entry.get("history", [])
    ]
    results.sort(key=lambda r: r.at)
    return results


def clear_history(tag: str | None = None) -> None:
    """Forget the comparisons of ``tag`` (of every tag when None); baselines stay."""
    if tag is not None:
        _check_tag(tag)
    with _lock:
        path = store_path()
        data = _load(path)
        for name, entry in data["tags"].items():
            if tag is None or name == tag:
                entry["history"] = []
        _save(path, data)


def tags() -> list[str]:
    """The tags that have a baseline."""
    with _lock:
        return sorted(_load(store_path())["tags"])
