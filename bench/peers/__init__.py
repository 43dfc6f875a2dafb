"""One adapter per ORM: ``setup(vendor, settings)`` then ``scenarios(ctx)``.

Every adapter builds the same schema (tables ``bench_author``, ``bench_tag``, ``bench_book``
and ``bench_book_tags``; indexes on ``bench_book.title``, ``bench_book.pages`` and the
foreign key) so that the raw driver's SQL runs unchanged against each ORM's database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Scenarios = dict[str, Callable[[], Any]]


@dataclass
class Ctx:
    n: int
    rows: int
    ids: list[int]
    author_ids: list[int]

    @property
    def half(self) -> int:
        return self.rows // 2
