"""Count and capture the queries a block of code runs: ``assert_num_queries(n)``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dorm.db.connection import DEFAULT_DB_ALIAS, connections

__all__ = ["CaptureQueriesContext", "assertNumQueries", "assert_num_queries"]


class CaptureQueriesContext:
    """``with CaptureQueriesContext() as ctx: ...``; ``ctx.captured_queries`` lists each
    statement as ``{"sql", "params", "time", "alias"}`` (params masked).

    Statements of the async API on the alias are captured too. As in Django, BEGIN,
    COMMIT and ROLLBACK are not counted; savepoints are.
    """

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
def assert_num_queries(num: int, using: str = DEFAULT_DB_ALIAS) -> Iterator[CaptureQueriesContext]:
    """Fail with the list of statements unless the block runs exactly ``num`` queries.

    ``with assert_num_queries(1): list(Book.objects.all())``. The context manager yields
    the ``CaptureQueriesContext``; nothing is checked when the block raises.
    """
    if isinstance(num, bool) or not isinstance(num, int):
        raise TypeError(f"assert_num_queries(num): num must be an int, not {num!r}")
    with CaptureQueriesContext(using) as ctx:
        yield ctx
    executed = len(ctx.captured_queries)
    if executed != num:
        listing = "\n".join(f"{i}. {q['sql']}" for i, q in enumerate(ctx.captured_queries, 1))
        raise AssertionError(
            f"{executed} queries executed, {num} expected (database {using!r})\n"
            f"Captured queries were:\n{listing}"
        )


#: The Django spelling, kept for code ported from ``TestCase.assertNumQueries``.
assertNumQueries = assert_num_queries
