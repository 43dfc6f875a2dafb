"""Testing helpers: count and capture the queries a block of code runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dorm.db.connection import DEFAULT_DB_ALIAS, connections

__all__ = ["CaptureQueriesContext", "assertNumQueries"]


class CaptureQueriesContext:
    """``with CaptureQueriesContext() as ctx: ...``; ``ctx.captured_queries`` lists each
    statement as ``{"sql", "params", "time", "alias"}`` (params masked)."""

    def __init__(self, using: str = DEFAULT_DB_ALIAS) -> None:
        self.using = using
        self.captured_queries: list[dict[str, Any]] = []

    def __enter__(self) -> CaptureQueriesContext:
        self.captured_queries = []
        connections[self.using]._captures.append(self.captured_queries)
        return self

    def __exit__(self, *exc: Any) -> None:
        captures = connections[self.using]._captures
        for i, capture in enumerate(captures):
            if capture is self.captured_queries:
                del captures[i]
                break

    def __len__(self) -> int:
        return len(self.captured_queries)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.captured_queries[index]


@contextmanager
def assertNumQueries(num: int, using: str = DEFAULT_DB_ALIAS) -> Iterator[CaptureQueriesContext]:
    """Fail with the list of statements unless the block runs exactly ``num`` queries."""
    with CaptureQueriesContext(using) as ctx:
        yield ctx
    executed = len(ctx.captured_queries)
    if executed != num:
        listing = "\n".join(f"{i}. {q['sql']}" for i, q in enumerate(ctx.captured_queries, 1))
        raise AssertionError(
            f"{executed} queries executed, {num} expected\nCaptured queries were:\n{listing}"
        )
