"""JSON Lines dumps of model rows: one JSON object per line, as ``json_schema_for`` describes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from dorm.contrib.serializers.exceptions import RecordError
from dorm.contrib.serializers.registry import columns_for
from dorm.contrib.serializers.values import from_json, to_json

__all__ = ["iter_jsonl", "stream_jsonl"]


def stream_jsonl(
    queryset: Any, fields: Sequence[str] | None = None, chunk_rows: int = 1000
) -> Iterator[bytes]:
    """Yield the rows of ``queryset`` as JSON Lines, ``chunk_rows`` lines per chunk."""
    columns = columns_for(queryset.model, fields)
    rows = queryset.values_list(*[c.attname for c in columns]).iterator(chunk_size=chunk_rows)
    lines: list[str] = []
    for row in rows:
        record = {c.name: to_json(c, v) for c, v in zip(columns, row, strict=True)}
        lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
        if len(lines) >= chunk_rows:
            yield ("\n".join(lines) + "\n").encode()
            lines = []
    if lines:
        yield ("\n".join(lines) + "\n").encode()


def iter_jsonl(lines: Iterable[bytes | str], model: Any) -> Iterator[Any]:
    """Read JSON Lines into unsaved ``model`` instances; blank lines are skipped.

    :raises RecordError: a line is not a JSON object of the model's fields; ``row`` is
        its 1-based number among the records.
    """
    columns = {c.name: c for c in columns_for(model)}
    by_attname = {c.attname: c for c in columns.values()}
    row = 0
    for line in lines:
        if not line.strip():
            continue
        row += 1
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise RecordError(row, f"not JSON ({exc})") from None
        if not isinstance(record, dict):
            raise RecordError(row, f"expected a JSON object, got {record!r}")
        kwargs = {}
        for key, value in record.items():
            column = columns.get(key) or by_attname.get(key)
            if column is None:
                raise RecordError(
                    row, f"{model.__name__} has no field {key!r}; known: {', '.join(columns)}"
                )
            try:
                kwargs[column.attname] = from_json(column, value)
            except (ValueError, TypeError) as exc:
                raise RecordError(row, f"{model.__name__}.{column.name}: {exc}") from None
        try:
            yield model(**kwargs)
        except (ValueError, TypeError) as exc:
            raise RecordError(row, f"{model.__name__}: {exc}") from exc
