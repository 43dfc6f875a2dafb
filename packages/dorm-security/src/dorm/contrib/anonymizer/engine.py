"""``anonymize_model``: mask columns in place, one keyset-paginated batch per transaction.

Every argument is checked by ``plan_anonymization`` before the first statement runs. Each
batch reads the next ``batch_size`` rows after the last primary key done (``pk__gt``, so a
batch costs the same at row 10 and at row 10 million, where OFFSET would rescan), computes
the replacements in Python and writes them with one ``UPDATE ... FROM (VALUES ...)``
statement, in one transaction. A failing batch rolls back alone: the batches before it
stay committed and the error carries the primary key to resume after.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dorm.contrib.anonymizer.exceptions import AnonymizationError
from dorm.contrib.anonymizer.strategies import (
    BUILTIN,
    Masker,
    Strategy,
    builtin_length,
    make_masker,
)

__all__ = ["Column", "Plan", "anonymize_model", "plan_anonymization"]

logger = logging.getLogger("dorm.contrib.anonymizer")

# Bound parameters per UPDATE statement: below SQLite's 32766 and PostgreSQL's 65535.
_MAX_PARAMS = 30000
_LENGTH_TYPE = re.compile(r"^\s*(varchar|character varying|char|character)\s*\(\d+\)\s*$", re.I)
# Re-draws of a pseudonym that collided in a unique column before giving up.
_MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class Column:
    """One column to mask: the field, its strategy and the function that masks a value."""

    field: Any
    strategy: Strategy
    mask: Masker | None  # None for a callable strategy (called with the value alone)

    @property
    def name(self) -> str:
        return str(self.field.name)

    def replace(self, value: Any, attempt: int = 0) -> Any:
        if self.mask is None:
            assert callable(self.strategy)
            return self.strategy(value)
        return self.mask(value, attempt)


@dataclass(frozen=True)
class Plan:
    """What ``anonymize_model`` will do: the checked columns, and the ``pii=True`` fields
    the mapping leaves out (reported, never masked implicitly)."""

    model: Any
    columns: list[Column]
    unlisted_pii: list[str] = field(default_factory=list)

    def describe(self, column: Column) -> str:
        strategy = column.strategy
        shown = strategy if isinstance(strategy, str) else getattr(strategy, "__name__", "fn")
        return f"{column.name}={shown}"


def plan_anonymization(
    model: Any, mapping: Mapping[str, Strategy], seed: str | bytes | None = None
) -> Plan:
    """Check ``mapping`` against ``model`` and return the plan; nothing is written.

    :raises TypeError: ``model`` is not a model class, a strategy is neither a name nor a
        callable, or ``seed`` is not str / bytes.
    :raises FieldError: a key is not a concrete field of the model.
    :raises ValueError: an unknown strategy, the primary key, ``"null"`` on a NOT NULL
        column, ``"redact"`` on a unique column, or a pseudonym longer than ``max_length``.
    """
    meta = getattr(model, "_meta", None)
    if not isinstance(model, type) or meta is None:
        raise TypeError(f"anonymize_model() needs a model class, got {model!r}")
    if not isinstance(mapping, Mapping) or not mapping:
        raise ValueError(
            f"{meta.label}: the mapping must be a non-empty dict of column -> strategy, "
            f"got {mapping!r}"
        )
    if seed is not None and not isinstance(seed, str | bytes):
        raise TypeError(f"seed must be str, bytes or None, got {type(seed).__name__}")
    columns = []
    for name, strategy in mapping.items():
        fld = meta.get_concrete_field(name, "anonymize_model()")
        where = f"{meta.label}.{name}"
        if fld.primary_key:
            raise ValueError(f"{where}: the primary key cannot be anonymized")
        if callable(strategy):
            columns.append(Column(fld, strategy, None))
            continue
        if not isinstance(strategy, str):
            raise TypeError(
                f"{where}: a strategy is a name or a callable, got {type(strategy).__name__}"
            )
        if strategy not in BUILTIN:
            raise ValueError(
                f"{where}: unknown strategy {strategy!r}; known: "
                f"{', '.join(sorted(BUILTIN))}, or a callable(value) -> value"
            )
        if strategy == "null" and not fld.null:
            raise ValueError(f"{where}: strategy 'null' on a NOT NULL column; pick another")
        if fld.unique and not BUILTIN[strategy]:
            raise ValueError(
                f"{where}: strategy {strategy!r} writes one value into a unique column; "
                "use random_email, random_phone, null or a callable giving distinct values"
            )
        max_length = getattr(fld, "max_length", None)
        needed = builtin_length(strategy)
        if strategy != "redact" and max_length is not None and needed > max_length:
            raise ValueError(
                f"{where}: strategy {strategy!r} writes {needed} characters, the column "
                f"holds {max_length} (max_length)"
            )
        columns.append(Column(fld, strategy, make_masker(strategy, seed, max_length)))
    chosen = {c.name for c in columns}
    unlisted = [f.name for f in meta.concrete_fields if f.pii and f.name not in chosen]
    if unlisted:
        logger.warning(
            "%s: pii=True field(s) not in the anonymization mapping, left as they are: %s",
            meta.label,
            ", ".join(unlisted),
        )
    return Plan(model, columns, unlisted)


def anonymize_model(
    model: Any,
    mapping: Mapping[str, Strategy],
    batch_size: int = 1000,
    seed: str | bytes | None = None,
    *,
    using: str = "default",
    start_after: Any = None,
    progress: bool | None = None,
) -> int:
    """Replace the listed columns of every row of ``model``; return the rows changed.

    ``mapping`` maps a field name to ``"random_email"``, ``"random_phone"``, ``"redact"``,
    ``"null"`` or a ``callable(value) -> value``; other columns are not written. With a
    ``seed`` the pseudonyms are a keyed hash of the original value (deterministic across
    runs and tables); without one they are random. Unique columns stay unique.
    ``start_after`` resumes after that primary key (see ``AnonymizationError.last_pk``).
    ``progress`` (default: stderr is a terminal) prints the running count to stderr.

    :raises AnonymizationError: a batch failed; earlier batches are committed.
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    plan = plan_anonymization(model, mapping, seed)
    show = sys.stderr.isatty() if progress is None else progress
    return _run(plan, batch_size, using, start_after, show)


def _run(plan: Plan, batch_size: int, using: str, start_after: Any, show: bool) -> int:
    from dorm import transaction
    from dorm.db.connection import get_connection

    model = plan.model
    label = model._meta.label
    connection = get_connection(using)
    names = [c.name for c in plan.columns]
    last, total = start_after, 0
    while True:
        try:
            with transaction.atomic(using=using):
                rows = _next_batch(model, names, last, batch_size, using)
                if not rows:
                    break
                new = _replacements(plan, rows, using)
                _write(connection, model, plan.columns, [r[0] for r in rows], new)
        except AnonymizationError as exc:
            raise AnonymizationError(
                f"{label}: {exc} Nothing of this batch was written; {total} row(s) of "
                f"earlier batches are committed. {_resume_hint(last)}",
                last_pk=last,
                rows_done=total,
            ) from exc
        except Exception as exc:
            raise AnonymizationError(
                f"{label}: the batch after pk={last!r} failed ({type(exc).__name__}: {exc}); "
                f"it was rolled back, {total} row(s) of earlier batches are committed. "
                f"{_resume_hint(last)}",
                last_pk=last,
                rows_done=total,
            ) from exc
        last = rows[-1][0]
        total += len(rows)
        if show:
            print(f"\r{label}: {total} row(s) anonymized", end="", file=sys.stderr, flush=True)
    if show:
        print(file=sys.stderr)
    logger.info("%s: %d row(s) anonymized (%s)", label, total, ", ".join(names))
    return total


def _resume_hint(last: Any) -> str:
    if last is None:
        return "Run it again from the start."
    return f"Resume with start_after={last!r} (dorm anonymize ... --after {last})."


def _next_batch(
    model: Any, names: list[str], last: Any, batch_size: int, using: str
) -> list[tuple[Any, ...]]:
    rows = model._default_manager.using(using).order_by("pk")
    if last is not None:
        rows = rows.filter(pk__gt=last)
    return list(rows.values_list("pk", *names)[:batch_size])


def _replacements(plan: Plan, rows: list[tuple[Any, ...]], using: str) -> list[list[Any]]:
    """The new value of each masked column, row by row, with unique columns de-duplicated."""
    new = [[c.replace(row[i + 1]) for i, c in enumerate(plan.columns)] for row in rows]
    for i, column in enumerate(plan.columns):
        if column.field.unique and column.strategy != "null":
            _keep_unique(plan.model, column, i, rows, new, using)
    return new


def _keep_unique(
    model: Any,
    column: Column,
    index: int,
    rows: list[tuple[Any, ...]],
    new: list[list[Any]],
    using: str,
) -> None:
    """Re-draw pseudonyms that repeat within the batch or that another row already holds
    (committed by an earlier batch, or an original value not masked yet)."""
    for attempt in range(1, _MAX_ATTEMPTS + 1):
        values = [row[index] for row in new]
        holders = _holders(model, column.name, {v for v in values if v is not None}, using)
        seen: set[Any] = set()
        clashes = []
        for position, (row, value) in enumerate(zip(rows, values, strict=True)):
            if value is None:
                continue
            if value in seen or holders.get(value, row[0]) != row[0]:
                clashes.append(position)
            seen.add(value)
        if not clashes:
            return
        if column.mask is None:
            raise AnonymizationError(
                f"the callable for unique column {column.name!r} gave {len(clashes)} value(s) "
                "that another row holds or that repeat in the batch."
            )
        for position in clashes:
            new[position][index] = column.replace(rows[position][index + 1], attempt)
    raise AnonymizationError(
        f"unique column {column.name!r}: pseudonyms still collide after {_MAX_ATTEMPTS} draws."
    )


def _holders(model: Any, name: str, values: set[Any], using: str) -> dict[Any, Any]:
    """``{value: pk}`` of the rows that hold one of ``values`` in column ``name``."""
    found: dict[Any, Any] = {}
    ordered = list(values)
    manager = model._default_manager.using(using)
    for start in range(0, len(ordered), 900):
        chunk = ordered[start : start + 900]
        for pk, value in manager.filter(**{f"{name}__in": chunk}).values_list("pk", name):
            found[value] = pk
    return found


def _write(
    connection: Any,
    model: Any,
    columns: list[Column],
    pks: list[Any],
    new: list[list[Any]],
) -> None:
    """``WITH v(pk, c0, ...) AS (VALUES ...) UPDATE t SET col = v.cN FROM v WHERE pk = v.pk``:
    one statement per ``_MAX_PARAMS`` values; columns set to NULL are written as NULL."""
    ops = connection.ops
    qn = ops.quote_name
    pk_field = model._meta.pk
    table = qn(model._meta.db_table)
    postgres = connection.vendor == "postgresql"
    bound = [i for i, c in enumerate(columns) if c.strategy != "null"]
    preps: list[Callable[[Any], Any]] = [_prep(ops, pk_field)]
    preps += [_prep(ops, columns[i].field) for i in bound]
    sets = []
    for i, column in enumerate(columns):
        target = qn(column.field.column)
        if column.strategy == "null":
            sets.append(f"{target} = NULL")
            continue
        value = f"v.{qn(f'c{bound.index(i)}')}"
        if postgres:  # VALUES of bound parameters are text until cast
            value = f"CAST({value} AS {_cast_type(column.field.db_type(connection))})"
        sets.append(f"{target} = {value}")
    pk_ref = f"v.{qn('pk')}"
    if postgres:
        pk_ref = f"CAST({pk_ref} AS {pk_field.rel_db_type(connection)})"
    names = ", ".join(qn(n) for n in ["pk", *(f"c{k}" for k in range(len(bound)))])
    placeholder = "(" + ", ".join([ops.placeholder] * (1 + len(bound))) + ")"
    sensitive_cols = [k + 1 for k, i in enumerate(bound) if columns[i].field.sensitive]
    per_statement = max(1, _MAX_PARAMS // (1 + len(bound)))
    for start in range(0, len(pks), per_statement):
        chunk = range(start, min(start + per_statement, len(pks)))
        params: list[Any] = []
        sensitive: list[int] = []
        for row in chunk:
            base = len(params)
            params.append(preps[0](pks[row]))
            params.extend(preps[k + 1](new[row][i]) for k, i in enumerate(bound))
            sensitive.extend(base + s for s in sensitive_cols)
        values = ", ".join([placeholder] * len(chunk))
        # The batch is a pk range (keyset order): bounding the target by it lets both
        # planners read only the batch's rows, where a join on v alone may scan the table.
        pk_col = f"{table}.{qn(pk_field.column)}"
        sql = (
            f"WITH v({names}) AS (VALUES {values}) UPDATE {table} SET {', '.join(sets)} "
            f"FROM v WHERE {pk_col} = {pk_ref} "
            f"AND {pk_col} BETWEEN {ops.placeholder} AND {ops.placeholder}"
        )
        params += [preps[0](pks[chunk[0]]), preps[0](pks[chunk[-1]])]
        connection.execute(sql, params, sensitive)


def _cast_type(db_type: str) -> str:
    """The type to cast a VALUES column to: an explicit cast to varchar(n) would cut an
    over-long value silently, so text columns go as text and the assignment checks it."""
    return "text" if _LENGTH_TYPE.match(db_type) else db_type


def _prep(ops: Any, fld: Any) -> Callable[[Any], Any]:
    adapter = ops.adapter_for(fld)
    prep = fld.get_db_prep_value

    def convert(value: Any) -> Any:
        if value is None:
            return None
        value = prep(value)
        return value if adapter is None or value is None else adapter(value)

    return convert
