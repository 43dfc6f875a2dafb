"""``detect()``: find the same query shape repeated from one line of code (N+1 queries).

Inside a scope every SELECT is reduced to its shape (its SQL, whose values are already
placeholders, with ``IN (...)`` lists collapsed) and the line of application code that
caused it. A shape seen ``threshold`` times from one line is an N+1 finding; the query that
ran just before its first occurrence names the model being iterated, from which
``suggest_fix`` derives the eager load to add. Scopes live in a context variable: each
thread and each asyncio task has its own, and code outside a scope pays nothing (the hook
is registered only while a scope is open).
"""

from __future__ import annotations

import logging
import re
import threading
from contextvars import ContextVar, Token
from dataclasses import dataclass
from types import TracebackType

from dorm import plugins
from dorm.contrib.nplusone.exceptions import NPlusOneError
from dorm.contrib.nplusone.fix import Fix, suggest_fix
from dorm.contrib.nplusone.location import CodeLocation, caller_location

__all__ = ["Detection", "Finding", "detect"]

logger = logging.getLogger("dorm.contrib.nplusone")

_IN_LIST = re.compile(r"\bIN\s*\((?:\s*(?:%s|\?|\$\d+)\s*,?)+\)", re.I)
_FROM = re.compile(r'\bFROM\s+"?(\w+)"?', re.I)
_scope: ContextVar[Detection | None] = ContextVar("dorm_nplusone_scope", default=None)


def shape_of(sql: str) -> str:
    """``sql`` with ``IN (%s, %s, ...)`` lists collapsed to ``IN (...)``."""
    return _IN_LIST.sub("IN (...)", sql)


@dataclass(frozen=True)
class Finding:
    """``sql`` ran ``count`` times from ``location`` while rows of ``model_hint`` were read."""

    sql: str
    location: CodeLocation
    count: int
    alias: str
    model_hint: type | None
    fix: Fix | None

    def __str__(self) -> str:
        advice = str(self.fix) if self.fix else "no eager load found; check the loop"
        return (
            f"N+1 query: {self.count} x {self.sql[:160]} from {self.location.filename}:"
            f"{self.location.lineno} ({self.location.function}); {advice}"
        )


class _Hooks:
    @plugins.hookimpl
    def dorm_pre_query(self, alias: str, sql: str) -> None:
        scope = _scope.get()
        if scope is not None and sql.lstrip()[:6].upper() == "SELECT":
            scope._observe(alias, sql)


_hooks = _Hooks()
_lock = threading.Lock()
_open_scopes = 0


def _attach() -> None:
    global _open_scopes
    with _lock:
        _open_scopes += 1
        if not plugins.get_plugin_manager().is_registered(_hooks):
            plugins.register(_hooks, name="observability.nplusone")


def _detach() -> None:
    global _open_scopes
    with _lock:
        _open_scopes -= 1
        if _open_scopes <= 0:
            _open_scopes = 0
            if plugins.get_plugin_manager().is_registered(_hooks):
                plugins.unregister(_hooks)


class Detection:
    """One ``detect()`` scope: ``findings`` is filled when it exits."""

    def __init__(self, threshold: int = 2, strict: bool = False, log: bool = True) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 2:
            raise ValueError(f"detect(threshold=...): expected an int >= 2, got {threshold!r}")
        self.threshold = threshold
        self.strict = strict
        self.log = log
        self.findings: list[Finding] = []
        self._counts: dict[tuple[str, str, CodeLocation], int] = {}
        self._parents: dict[tuple[str, str, CodeLocation], str | None] = {}
        self._last: tuple[tuple[str, str, CodeLocation] | None, str | None] = (None, None)
        self._token: Token[Detection | None] | None = None
        self._lock = threading.Lock()

    def _observe(self, alias: str, sql: str) -> None:
        location = caller_location(2)
        if location is None:
            return
        shape = shape_of(sql)
        key = (alias, shape, location)
        with self._lock:
            count = self._counts.get(key, 0)
            last_key, last_table = self._last
            if count == 0:
                self._parents[key] = last_table
            self._counts[key] = count + 1
            if key != last_key:
                match = _FROM.search(sql)
                self._last = (key, match.group(1) if match else None)

    def _collect(self) -> list[Finding]:
        from dorm.apps import apps

        tables = {m._meta.db_table: m for m in apps.get_models()}
        found = []
        for key, count in self._counts.items():
            if count < self.threshold:
                continue
            alias, shape, location = key
            parent = self._parents.get(key)
            hint = tables.get(parent) if parent else None
            try:
                fix: Fix | None = suggest_fix(shape, model_hint=hint, location=location)
            except (ValueError, TypeError):
                fix = None
            found.append(Finding(shape, location, count, alias, hint, fix))
        return found

    def __enter__(self) -> Detection:
        _attach()
        self._token = _scope.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _scope.reset(self._token)
            self._token = None
        _detach()
        self.findings = self._collect()
        if self.log:
            for finding in self.findings:
                logger.warning("%s", finding)
        if self.strict and self.findings and exc is None:
            raise NPlusOneError(
                f"{len(self.findings)} N+1 pattern(s) found: "
                + "; ".join(str(f) for f in self.findings),
                list(self.findings),
            )

    async def __aenter__(self) -> Detection:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def detect(threshold: int = 2, strict: bool = False, log: bool = True) -> Detection:
    """A scope (``with`` / ``async with``) that reports N+1 queries when it exits.

    A finding is a SELECT shape run ``threshold`` times or more from one line. Each is
    logged as a WARNING on ``dorm.contrib.nplusone`` (unless ``log=False``); with
    ``strict=True`` the scope raises NPlusOneError listing them.
    """
    return Detection(threshold, strict, log)
