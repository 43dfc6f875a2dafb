"""INSERT, UPDATE and DELETE statements built from models and queries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from dorm.db.utils import patterns_version
from dorm.exceptions import FieldError
from dorm.expressions import bind
from dorm.sql.compiler import SQLCompiler, unmask
from dorm.sql.datastructures import Join
from dorm.sql.where import FullResultSet

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.models.base import Model
    from dorm.models.fields import Field
    from dorm.sql.query import Query

__all__ = ["delete_sql", "insert", "insert_one", "update_sql"]


def insert(
    model: type[Model],
    objs: Sequence[Model],
    fields: Sequence[Field],
    connection: BaseDatabaseWrapper,
    returning_fields: Sequence[Field] = (),
    on_conflict: str | None = None,
    unique_fields: Sequence[Field] = (),
    update_fields: Sequence[Field] = (),
    batch_size: int | None = None,
) -> list[tuple[Any, ...]]:
    """INSERT ``objs`` in multi-row batches; return the RETURNING rows (one per object)."""
    if len(objs) == 1 and fields and on_conflict is None:
        return insert_one(model, objs[0], fields, connection, returning_fields)
    if not fields and connection.vendor == "sqlite" and len(objs) > 1:
        rows: list[tuple[Any, ...]] = []
        for obj in objs:
            rows.extend(
                insert(
                    model,
                    [obj],
                    fields,
                    connection,
                    returning_fields,
                    on_conflict,
                    unique_fields,
                    update_fields,
                )
            )
        return rows
    args = (model, fields, connection, returning_fields, on_conflict, unique_fields, update_fields)
    if fields and len(objs) > 1 and connection.vendor == "postgresql":
        return _insert_unnest(objs, batch_size, *args)
    if fields and len(objs) > 1 and _keys_from_rowid(model, objs, fields, *args[2:5]):
        no_returning = (model, fields, connection, (), None, (), ())
        return _insert_rows(objs, batch_size, None, *no_returning, rowid_keys=True)
    return _insert_rows(objs, batch_size, None, *args)


_AUTO_KEYS = ("AutoField", "BigAutoField", "SmallAutoField")
_MAX_ROWID = 2**63 - 1


def _reads_back_only_an_auto_key(
    model: type[Model],
    fields: Sequence[Field],
    connection: BaseDatabaseWrapper,
    returning_fields: Sequence[Field],
) -> bool:
    """An INSERT on SQLite that writes no key and reads back only the model's auto key:
    the case where that key may be the last rowid (the callers check the table)."""
    pk = model._meta.pk
    return (
        connection.vendor == "sqlite"
        and pk is not None
        and len(returning_fields) == 1
        and returning_fields[0] is pk
        and pk not in fields
        and pk.get_internal_type() in _AUTO_KEYS
    )


def _keys_from_rowid(
    model: type[Model],
    objs: Sequence[Model],
    fields: Sequence[Field],
    connection: BaseDatabaseWrapper,
    returning_fields: Sequence[Field],
    on_conflict: str | None,
) -> bool:
    """Whether a plain multi-row INSERT on SQLite can learn its new keys from the last
    rowid instead of ``RETURNING`` (which doubles SQLite's time for a large batch).

    One statement's rows take consecutive rowids (the largest rowid, or AUTOINCREMENT's
    sequence, plus one, row after row) unless something else inserts into the table
    meanwhile (only a trigger of this table can) or the largest rowid is at SQLite's
    limit (then it picks free rowids at random). So: the only value read back is an auto
    key that is the table's rowid (a single INTEGER PRIMARY KEY column), the table has no
    trigger, and its largest key leaves room for every row.
    """
    pk = model._meta.pk
    if on_conflict is not None or not _reads_back_only_an_auto_key(
        model, fields, connection, returning_fields
    ):
        return False
    assert pk is not None
    table = model._meta.db_table
    # Triggers live in the main schema or, for TEMP triggers, in the temp one.
    row = connection.fetchone(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'trigger' "
        "AND tbl_name = ? COLLATE NOCASE UNION ALL SELECT 1 FROM sqlite_temp_master "
        "WHERE type = 'trigger' AND tbl_name = ? COLLATE NOCASE), "
        "(SELECT count(*) = 1 AND upper(max(type)) = 'INTEGER' AND max(name) = ? "
        "FROM pragma_table_info(?) WHERE pk > 0), "
        f"(SELECT max({connection.ops.quote_name(pk.column)}) "
        f"FROM {connection.ops.quote_name(table)})",
        [table, table, pk.column, table],
    )
    if row is None or row[0] or not row[1]:
        return False
    top = row[2] or 0
    return bool(top < _MAX_ROWID - len(objs))


def _insert_unnest(
    objs: Sequence[Model],
    batch_size: int | None,
    model: type[Model],
    fields: Sequence[Field],
    connection: BaseDatabaseWrapper,
    returning_fields: Sequence[Field],
    on_conflict: str | None,
    unique_fields: Sequence[Field],
    update_fields: Sequence[Field],
) -> list[tuple[Any, ...]]:
    """PostgreSQL: one array parameter per column, unnested by the server. The statement
    text does not depend on the row count, there is no limit of 65535 parameters, and it
    is about three times faster than multi-row VALUES for large batches."""
    ops = connection.ops
    qn = ops.quote_name
    returning = returning_fields if connection.supports_returning else ()
    cols = ", ".join(qn(f.column) for f in fields)
    arrays = ", ".join(
        f"{ops.placeholder}::{_array_element_type(f.db_type(connection))}[]" for f in fields
    )
    tail = _conflict_tail(qn, on_conflict, unique_fields, update_fields, returning)
    sql = f"INSERT INTO {qn(model._meta.db_table)} ({cols}) SELECT * FROM unnest({arrays}){tail}"
    row_values = _row_values(fields, ops)
    n = len(fields)
    sensitive = [i for i, f in enumerate(fields) if f.sensitive]
    step = batch_size or len(objs)
    literals = connection.array_text_params
    result: list[tuple[Any, ...]] = []
    for start in range(0, len(objs), step):
        batch = objs[start : start + step]
        flat = row_values(batch)
        columns: list[Any] = [flat[i::n] for i in range(n)]
        if not all(_unnestable(column) for column in columns):
            # An array (or other composite) value would be flattened by unnest.
            result.extend(
                _insert_rows(
                    batch,
                    batch_size,
                    flat,
                    model,
                    fields,
                    connection,
                    returning_fields,
                    on_conflict,
                    unique_fields,
                    update_fields,
                )
            )
        else:
            if literals:
                columns = [_array_text(column) or column for column in columns]
            if returning:
                result.extend(connection.fetchall(sql, columns, sensitive))
            else:
                connection.execute(sql, columns, sensitive)
    return result


_CHAR_TYPES = {"varchar": "varchar", "character varying": "varchar"}
_CHAR_TYPES.update(dict.fromkeys(("char", "character", "bpchar"), "bpchar"))
_CHAR_TYPES.update(dict.fromkeys(("bit", "bit varying", "varbit"), "varbit"))


def _array_element_type(db_type: str) -> str:
    """The element type an unnest array parameter is cast to: the column's type without
    the length of a character or bit type (``varchar(3)`` -> ``varchar``). An explicit
    cast to ``varchar(3)`` silently cuts a longer value; the INSERT's own assignment to
    the column raises instead, as a single-row INSERT does."""
    head, paren, tail = db_type.partition("(")
    if paren and tail.rstrip().endswith(")") and tail[:-1].strip().isdigit():
        base = _CHAR_TYPES.get(head.strip().lower())
        if base is not None:
            return base
    return db_type


_NUL = "\x00"


def _array_text(column: list[Any]) -> str | None:
    """PostgreSQL's text form of an array of ``column`` when it holds only strings (their
    text, as psycopg dumps a ``str`` subclass too) or only ``int`` values and NULLs, else
    None (the driver adapts the list).

    psycopg adapts a list element by element in Python (a regular expression per
    string); these joins run in C. Strings are joined on NUL, which no PostgreSQL text
    can hold (the join itself refuses anything but strings), then quoted and escaped in
    one pass each: a value holding NUL itself is left to the driver, which rejects it.
    Integers are written by the list's own repr: ``{1, 2, NULL}`` (the spaces are
    allowed), cheaper than one str() call per value.
    """
    try:
        joined = _NUL.join(column)
    except TypeError:  # not only strings
        pass
    else:
        if joined.count(_NUL) != len(column) - 1:
            return None
        escaped = joined.replace("\\", "\\\\").replace('"', '\\"').replace(_NUL, '","')
        return '{"' + escaped + '"}'
    kinds = set(map(type, column))
    if kinds == {int} or kinds == {int, type(None)}:
        try:
            text = repr(column if type(column) is list else list(column))
        except ValueError:  # beyond the interpreter's limit of digits
            return None
        if len(kinds) == 2:
            text = text.replace("None", "NULL")
        return "{" + text[1:-1] + "}"
    return None


def _conflict_tail(
    qn: Any,
    on_conflict: str | None,
    unique_fields: Sequence[Field],
    update_fields: Sequence[Field],
    returning: Sequence[Field],
) -> str:
    tail = ""
    if on_conflict == "ignore":
        tail = " ON CONFLICT DO NOTHING"
    elif on_conflict == "update":
        target = ", ".join(qn(f.column) for f in unique_fields)
        sets = ", ".join(f"{qn(f.column)} = EXCLUDED.{qn(f.column)}" for f in update_fields)
        tail = (
            f" ON CONFLICT ({target}) DO UPDATE SET {sets}"
            if sets
            else (f" ON CONFLICT ({target}) DO NOTHING")
        )
    if returning:
        tail += " RETURNING " + ", ".join(qn(f.column) for f in returning)
    return tail


def _unnestable(column: list[Any]) -> bool:
    """True when the column's values are scalars (the first non-NULL one tells)."""
    for value in column:
        if value is not None:
            return not isinstance(value, (list, tuple, dict, set))
    return True


_row_value_functions: dict[tuple[Any, ...], Callable[[Sequence[Any]], list[Any]]] = {}


def _write_range(field: Field) -> tuple[int, int] | None:
    """``(low, high)`` of the integer column ``field`` writes, or None."""
    bounds = getattr(field, "_range", None)
    return None if bounds is None or field.is_relation else bounds


def check_write_ranges(values: Sequence[tuple[Field, Any]]) -> None:
    """Raise the field's ValidationError for a plain value outside its integer column."""
    for field, value in values:
        bounds = _write_range(field)
        if bounds is None or value is None or hasattr(value, "resolve_expression"):
            continue
        number = value if type(value) is int else field.to_python(value)
        if type(number) is int and not bounds[0] <= number <= bounds[1]:
            raise field.out_of_range(number)  # type: ignore[attr-defined]


def _row_values(fields: Sequence[Field], ops: Any) -> Callable[[Sequence[Any]], list[Any]]:
    """A function flattening objects into INSERT parameters: for each object and field,
    ``adapter(field.get_db_prep_value(field.pre_save(obj, True)))`` with the backend's
    adapter, compiled once per field list and backend so that no per-value loop
    bookkeeping runs. The base ``pre_save`` is read from the instance dict, and a value
    of a type the field passes through unchanged skips ``get_db_prep_value``.

    When every field has the base ``pre_save``, each row's values are read in one
    ``try`` block (free in CPython 3.11 unless it raises) and only a missing key, a
    deferred column, takes the per-field path that loads it."""
    key = (type(ops), *fields)
    found = _row_value_functions.get(key)
    if found is not None:
        return found
    from dorm.models.fields import Field as BaseField

    adapters = [ops.adapter_for(f) for f in fields]
    namespace: dict[str, Any] = {"int_": int}
    reads = []  # v<i> from the instance dict, or from pre_save
    body = []  # conversions and checks of each v<i>
    terms = []
    plain = all(type(f).pre_save is BaseField.pre_save for f in fields)
    for i, (field, adapter) in enumerate(zip(fields, adapters, strict=True)):
        namespace[f"pre{i}"] = field.pre_save
        namespace[f"prep{i}"] = field.get_db_prep_value
        if type(field).pre_save is BaseField.pre_save:
            # The base pre_save reads the instance dict (a deferred column is loaded).
            attname = field.attname
            reads.append(f"v{i} = d[{attname!r}] if {attname!r} in d else pre{i}(obj, True)")
        else:
            reads.append(f"v{i} = pre{i}(obj, True)")
        identity = field._identity_types()
        bounds = _write_range(field)
        check: list[str] = []
        if bounds is not None:
            # Out of the column's range: the field's ValidationError, not a driver error
            # (PostgreSQL's does not name the column; SQLite would store it).
            namespace[f"lo{i}"], namespace[f"hi{i}"] = bounds
            namespace[f"oor{i}"] = field.out_of_range  # type: ignore[attr-defined]
            check = [
                f"if type(v{i}) is int_ and not lo{i} <= v{i} <= hi{i}:",
                f"    raise oor{i}(v{i})",
            ]
        if identity == (int,) and check:
            # The usual integer column: one type test, then the range.
            body += [
                f"if type(v{i}) is int_:",
                f"    if not lo{i} <= v{i} <= hi{i}:",
                f"        raise oor{i}(v{i})",
                "else:",
                f"    v{i} = prep{i}(v{i})",
                *(f"    {line}" for line in check),
            ]
        else:
            if len(identity) == 1:
                namespace[f"same{i}"] = identity[0]
                body += [f"if type(v{i}) is not same{i}:", f"    v{i} = prep{i}(v{i})"]
            elif identity:
                namespace[f"same{i}"] = identity
                body += [f"if type(v{i}) not in same{i}:", f"    v{i} = prep{i}(v{i})"]
            else:
                body.append(f"v{i} = prep{i}(v{i})")
            body += check
        term = f"v{i}"
        if adapter is not None:
            namespace[f"adapt{i}"] = adapter
            term = f"adapt{i}({term})"
        terms.append(term)
    if plain and fields:
        direct = [f"v{i} = d[{f.attname!r}]" for i, f in enumerate(fields)]
        lines = ["try:", *(f"    {line}" for line in direct), "except KeyError:"]
        lines += [f"    {line}" for line in reads]
    else:
        lines = reads
    # repr() makes each attribute name a string literal: nothing of it is executed.
    source = (
        "def row_values(objs):\n"
        "    out = []\n"
        "    extend = out.extend\n"
        "    for obj in objs:\n"
        "        d = obj.__dict__\n"
        + "".join(f"        {line}\n" for line in [*lines, *body])
        + f"        extend(({', '.join(terms)}{',' if len(terms) == 1 else ''}))\n"
        "    return out\n"
    )
    exec(compile(source, "<dorm insert values>", "exec"), namespace)
    built: Callable[[Sequence[Any]], list[Any]] = namespace["row_values"]
    if len(_row_value_functions) > 1024:
        _row_value_functions.clear()
    _row_value_functions[key] = built
    return built


def _insert_rows(
    objs: Sequence[Model],
    batch_size: int | None,
    prepared: list[Any] | None,
    model: type[Model],
    fields: Sequence[Field],
    connection: BaseDatabaseWrapper,
    returning_fields: Sequence[Field],
    on_conflict: str | None,
    unique_fields: Sequence[Field],
    update_fields: Sequence[Field],
    rowid_keys: bool = False,
) -> list[tuple[Any, ...]]:
    """Multi-row ``INSERT ... VALUES`` batches (SQLite, and values unnest cannot carry);
    ``prepared`` holds the objects' parameters when already computed (flat, row by row).
    With ``rowid_keys`` (see ``_keys_from_rowid``) each batch's new keys are the rowids
    up to the statement's last one, returned as RETURNING rows of the key would be."""
    ops = connection.ops
    qn = ops.quote_name
    table = qn(model._meta.db_table)
    ph = ops.placeholder
    returning = returning_fields if connection.supports_returning else ()
    size = ops.bulk_batch_size(max(1, len(fields)), len(objs))
    if batch_size:
        size = min(size, batch_size)
    cols = ", ".join(qn(f.column) for f in fields)
    tail = _conflict_tail(qn, on_conflict, unique_fields, update_fields, returning)
    result: list[tuple[Any, ...]] = []
    n = len(fields)
    row_values = _row_values(fields, ops)
    masked = [i for i, f in enumerate(fields) if f.sensitive]
    for start in range(0, len(objs), size):
        batch = objs[start : start + size]
        params = row_values(batch) if prepared is None else prepared[start * n : (start + size) * n]
        sensitive = [r * n + i for r in range(len(batch)) for i in masked] if masked else []
        if n:
            row = f"({', '.join([ph] * n)})"
            sql = f"INSERT INTO {table} ({cols}) VALUES {', '.join([row] * len(batch))}{tail}"
        elif connection.vendor == "postgresql" and len(batch) > 1:
            pk = model._meta.pk
            assert pk is not None
            defaults = ", ".join(["(DEFAULT)"] * len(batch))
            sql = f"INSERT INTO {table} ({qn(pk.column)}) VALUES {defaults}{tail}"
        else:
            sql = f"INSERT INTO {table} DEFAULT VALUES{tail}"
        if returning:
            result.extend(connection.fetchall(sql, params, sensitive))
        elif rowid_keys:
            last = connection.execute_lastrowid(sql, params, sensitive)
            assert last is not None
            result.extend(zip(range(last - len(batch) + 1, last + 1)))
        else:
            connection.execute(sql, params, sensitive)
    return result


# (model, fields, returning, ops, patterns version) -> (sql, adapters, sensitive flags,
# whether the new key is the last rowid): save() and create() insert one row on the same
# columns again and again. Emptied whenever a schema editor runs a statement.
_one_row: dict[
    tuple[Any, ...], tuple[str, Callable[[Sequence[Any]], list[Any]], list[int], bool]
] = {}
_ONE_ROW_MAX = 512


def forget_tables() -> None:
    """Drop what the write paths learnt about tables (a schema editor changed one)."""
    _one_row.clear()


def _key_is_rowid(
    model: type[Model],
    fields: Sequence[Field],
    connection: BaseDatabaseWrapper,
    returning_fields: Sequence[Field],
) -> bool:
    """Whether a one-row INSERT on SQLite can read its new key as the last rowid instead
    of ``RETURNING`` (which costs SQLite about as much again as the insert): the only value
    read back is an auto key that is the table's rowid (a single INTEGER PRIMARY KEY
    column). A trigger's own inserts do not change the rowid SQLite reports afterwards."""
    pk = model._meta.pk
    if not _reads_back_only_an_auto_key(model, fields, connection, returning_fields):
        return False
    assert pk is not None
    # A catalog read, once per table and field list until a schema editor runs: sent on
    # the raw connection, so the statements a test counts or a hook sees are only the
    # ones its code asked for.
    with connection.connection() as raw:
        cur = raw.cursor()
        try:
            cur.execute(
                "SELECT count(*) = 1 AND upper(max(type)) = 'INTEGER' AND max(name) = ? "
                "FROM pragma_table_info(?) WHERE pk > 0",
                [pk.column, model._meta.db_table],
            )
            row = cur.fetchone()
        finally:
            cur.close()
    return bool(row and row[0])


def insert_one(
    model: type[Model],
    obj: Model,
    fields: Sequence[Field],
    connection: BaseDatabaseWrapper,
    returning_fields: Sequence[Field],
) -> list[tuple[Any, ...]]:
    """``insert()`` of one object on a non-empty field list (``save()`` of a new row): its
    statement and parameter function are cached per model, field list, RETURNING columns
    and backend."""
    ops = connection.ops
    returning = returning_fields if connection.supports_returning else ()
    key = (model, tuple(fields), tuple(returning), ops, patterns_version())
    entry = _one_row.get(key)
    if entry is None:
        qn = ops.quote_name
        cols = ", ".join(qn(f.column) for f in fields)
        marks = ", ".join([ops.placeholder] * len(fields))
        sql = f"INSERT INTO {qn(model._meta.db_table)} ({cols}) VALUES ({marks})"
        rowid = bool(returning) and _key_is_rowid(model, fields, connection, returning)
        if returning and not rowid:
            sql += " RETURNING " + ", ".join(qn(f.column) for f in returning)
        sensitive = [i for i, f in enumerate(fields) if f.sensitive]
        entry = (sql, _row_values(fields, ops), sensitive, rowid)
        if len(_one_row) >= _ONE_ROW_MAX:
            _one_row.clear()
        _one_row[key] = entry
    sql, row_values, sensitive, rowid = entry
    params = row_values((obj,))
    if rowid:
        return [(connection.execute_lastrowid(sql, params, sensitive),)]
    if returning:
        row = connection.fetchone(sql, params, sensitive)
        return [] if row is None else [row]
    connection.execute(sql, params, sensitive)
    return []


def update_sql(
    query: Query, values: Sequence[tuple[Field, Any]], connection: BaseDatabaseWrapper
) -> tuple[str, list[Any], list[int]]:
    """``UPDATE table SET ... WHERE ...``; joins in the filter become ``pk IN (subquery)``."""
    query = query.clone()
    qn = connection.ops.quote_name
    opts = query.opts
    table = opts.db_table
    compiler = SQLCompiler(query, connection)
    sets: list[str] = []
    params: list[Any] = []
    base = query.get_initial_alias()
    for field, value in values:
        if hasattr(value, "resolve_expression"):
            expr = value.resolve_expression(query, allow_joins=False)
            if getattr(expr, "contains_aggregate", False):
                raise FieldError(f"update() cannot set {field.name!r} to an aggregate")
            sql, p = compiler.compile(expr)
        else:
            if value is None and not field.null:
                from dorm.exceptions import IntegrityError

                raise IntegrityError(
                    f"{opts.object_name}.{field.name} cannot be set to NULL (null=False)"
                )
            sql, p = connection.ops.placeholder, [bind(field, value, connection)]
        sets.append(f"{qn(field.column)} = {sql}")
        params.extend(p)
    has_joins = any(
        isinstance(t, Join) and query.alias_refcount.get(a, 0) > 0
        for a, t in query.alias_map.items()
    )
    if has_joins or query.is_sliced:
        inner = query.clone()
        inner.set_select_pk()
        inner.annotations = {}
        inner.annotation_select_mask = []
        inner.clear_ordering(force=not inner.is_sliced)
        inner_compiler = inner.get_compiler(connection=connection)
        inner_sql, inner_params = inner_compiler._as_sql(True, False)
        pk = opts.pk
        assert pk is not None
        if connection.vendor == "sqlite" or query.is_sliced:
            inner_sql = f"SELECT * FROM ({inner_sql}) AS {qn('u')}"
        where = f"{qn(pk.column)} IN ({inner_sql})"
        where_params = inner_params
    else:
        try:
            where, where_params = compiler.compile(query.where)
        except FullResultSet:
            where, where_params = "", []
        if base != table:
            raise FieldError("update() on an aliased base table is not supported")
    sql = f"UPDATE {qn(table)} SET {', '.join(sets)}"
    if where:
        sql += f" WHERE {where}"
    out, sensitive = unmask([*params, *where_params])
    return sql, out, sensitive


def delete_sql(query: Query, connection: BaseDatabaseWrapper) -> tuple[str, list[Any], list[int]]:
    """``DELETE FROM table WHERE ...``; joins become ``pk IN (subquery)``."""
    query = query.clone()
    qn = connection.ops.quote_name
    opts = query.opts
    compiler = SQLCompiler(query, connection)
    query.get_initial_alias()
    has_joins = any(
        isinstance(t, Join) and query.alias_refcount.get(a, 0) > 0
        for a, t in query.alias_map.items()
    )
    if has_joins:
        inner = query.clone()
        inner.set_select_pk()
        inner.clear_ordering(force=True)
        inner_sql, params = inner.get_compiler(connection=connection)._as_sql(True, False)
        if connection.vendor == "sqlite":
            inner_sql = f"SELECT * FROM ({inner_sql}) AS {qn('u')}"
        pk = opts.pk
        assert pk is not None
        where = f"{qn(pk.column)} IN ({inner_sql})"
    else:
        try:
            where, params = compiler.compile(query.where)
        except FullResultSet:
            where, params = "", []
    sql = f"DELETE FROM {qn(opts.db_table)}"
    if where:
        sql += f" WHERE {where}"
    out, sensitive = unmask(params)
    return sql, out, sensitive
