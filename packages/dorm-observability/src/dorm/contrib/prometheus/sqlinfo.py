"""What a statement is, for labels and span names: its operation and its first table.

Parsed once per statement text (dorm reuses its SQL strings) and remembered in a bounded
dict, so the per-query cost is one dictionary lookup.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["StatementInfo", "statement_info"]

_TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE|JOIN)\s+"?([A-Za-z_][\w$]*)"?', re.I)
_MAX = 4096


class StatementInfo(NamedTuple):
    """``operation`` is the statement's first keyword, upper-case (``SELECT``, ``COMMIT``);
    ``collection`` is the first table it names, or None."""

    operation: str
    collection: str | None


_cache: dict[str, StatementInfo] = {}


def statement_info(sql: str) -> StatementInfo:
    """The operation and first table of ``sql``."""
    found = _cache.get(sql)
    if found is not None:
        return found
    words = sql.lstrip(" \t\r\n(").split(None, 1)
    operation = words[0].upper().rstrip(";") if words else "UNKNOWN"
    match = _TABLE.search(sql)
    found = StatementInfo(operation, match.group(1) if match else None)
    if len(_cache) >= _MAX:
        _cache.clear()
    _cache[sql] = found
    return found
