"""``Manager.raw(sql, params)``: model instances from hand-written SQL (a RawQuerySet).

Columns are matched to fields by column or attribute name (``translations`` renames
query columns first); a model field the query does not return is deferred (read from the
database on first access), and a column that is no field becomes a plain attribute. The
primary key must be selected. Write ``%s`` placeholders on every backend (as in Django);
the values are always bound parameters, and ``%%`` is a literal ``%``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dorm.exceptions import FieldDoesNotExist

if TYPE_CHECKING:
    from dorm.models.base import Model

__all__ = ["RawQuerySet"]

_PLACEHOLDER = re.compile(r"%%|%s")


class RawQuerySet:
    """Lazy: runs its SQL on first iteration, ``len()`` or indexing, then caches the rows."""

    def __init__(
        self,
        raw_query: str,
        model: type[Model],
        params: Sequence[Any] | Mapping[str, Any] = (),
        translations: Mapping[str, str] | None = None,
        using: str | None = None,
    ) -> None:
        if not isinstance(raw_query, str):
            raise TypeError(f"raw(): the SQL must be a str, got {type(raw_query).__name__}")
        if isinstance(params, (str, bytes)) or not isinstance(params, (Sequence, Mapping)):
            raise TypeError(f"raw(): params must be a list or tuple of values, got {params!r}")
        if isinstance(params, Mapping):
            raise TypeError("raw(): named parameters are not supported; use %s and a list")
        self.raw_query = raw_query
        self.model = model
        self.params = list(params)
        self.translations = dict(translations or {})
        self._db = using
        self._result_cache: list[Model] | None = None
        self.columns: list[str] = []

    @property
    def db(self) -> str:
        from dorm.db.router import router

        return self._db or router.db_for_read(self.model)

    def using(self, alias: str) -> RawQuerySet:
        """The same query on another database."""
        return RawQuerySet(self.raw_query, self.model, self.params, self.translations, alias)

    def _sql_for(self, vendor: str, placeholder: str) -> str:
        count = sum(1 for m in _PLACEHOLDER.finditer(self.raw_query) if m.group() == "%s")
        if count != len(self.params):
            raise ValueError(
                f"raw(): the SQL has {count} %s placeholder(s) but {len(self.params)} "
                f"parameter(s) were given"
            )
        if placeholder == "%s":
            return self.raw_query
        return _PLACEHOLDER.sub(lambda m: "%" if m.group() == "%%" else placeholder, self.raw_query)

    def _fetch_all(self) -> None:
        if self._result_cache is not None:
            return
        from dorm.db.connection import connections

        connection = connections[self.db]
        sql = self._sql_for(connection.vendor, connection.ops.placeholder)
        with connection.cursor() as cursor:
            cursor.execute(sql, self.params)
            names = [d[0] for d in cursor.description or ()]
            rows = cursor.fetchall()
        self.columns = [self.translations.get(n, n) for n in names]
        self._result_cache = self._build(rows, connection)

    def _build(self, rows: list[tuple[Any, ...]], connection: Any) -> list[Model]:
        from dorm.sql.compiler import column_converter

        if not rows:
            return []  # (the async PostgreSQL driver names no columns of an empty result)
        opts = self.model._meta
        by_name: dict[str, Any] = {}
        for field in opts.concrete_fields:
            by_name.setdefault(field.column, field)
            by_name.setdefault(field.attname, field)
        pk = opts.pk
        assert pk is not None
        fields = [by_name.get(name) for name in self.columns]
        if pk not in fields:
            raise FieldDoesNotExist(
                f"{self.model.__name__}.objects.raw(): the query must return the primary key "
                f"column {pk.column!r}; it returned {', '.join(self.columns) or 'no columns'}"
            )
        attnames = [f.attname for f in fields if f is not None]
        model_positions = [i for i, f in enumerate(fields) if f is not None]
        extra = [(i, name) for i, name in enumerate(self.columns) if fields[i] is None]
        convert = [
            (i, c)
            for i, f in enumerate(fields)
            if f is not None and (c := column_converter(connection.ops, f)) is not None
        ]
        db = connection.alias
        out: list[Model] = []
        for raw_row in rows:
            row = list(raw_row)
            for i, c in convert:
                if row[i] is not None:
                    row[i] = c(row[i])
            obj = self.model.from_db(db, attnames, [row[i] for i in model_positions])
            for i, name in extra:
                setattr(obj, name, row[i])
            out.append(obj)
        return out

    def __iter__(self) -> Iterator[Model]:
        self._fetch_all()
        assert self._result_cache is not None
        return iter(self._result_cache)

    def __len__(self) -> int:
        self._fetch_all()
        assert self._result_cache is not None
        return len(self._result_cache)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __getitem__(self, k: int | slice) -> Any:
        self._fetch_all()
        assert self._result_cache is not None
        return self._result_cache[k]

    def __aiter__(self) -> AsyncIterator[Model]:
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[Model]:
        from dorm.models.twins import run_sync

        await run_sync(self._fetch_all)
        for obj in self._result_cache or ():
            yield obj

    def __repr__(self) -> str:
        return f"<RawQuerySet: {self.raw_query}>"
