"""MessagePack streams of model rows: ``stream_msgpack``, ``astream_msgpack``, ``iter_msgpack``.

A stream is a concatenation of MessagePack objects: first a header map
``{"format": "dorm-msgpack", "version": 1, "model": "app.Model", "fields": [...]}``, then
one array per row, its values in the header's field order (a relation as its target's
key). Nothing is buffered beyond one chunk of ``chunk_rows`` rows, so memory stays flat
when the rows come from ``QuerySet.iterator()`` (a server-side cursor on PostgreSQL).
"""

from __future__ import annotations

import operator
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any

import msgpack

from dorm.contrib.serializers.exceptions import RecordError, SerializerError, StreamFormatError
from dorm.contrib.serializers.registry import Column, columns_for
from dorm.contrib.serializers.values import (
    carrier_converter,
    ext_hook,
    msgpack_default,
    naive_converter,
)

__all__ = ["FORMAT", "astream_msgpack", "iter_msgpack", "stream_msgpack"]

FORMAT = "dorm-msgpack"
VERSION = 1
DEFAULT_CHUNK_ROWS = 1000


def _check_chunk_rows(chunk_rows: object) -> int:
    if not isinstance(chunk_rows, int) or isinstance(chunk_rows, bool) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    return chunk_rows


def _is_queryset(source: object) -> bool:
    from dorm.models.query import QuerySet

    return isinstance(source, QuerySet) or hasattr(source, "get_queryset")


class _Encoder:
    """Packs rows into chunks of ``chunk_rows`` rows; ``add`` returns a full chunk."""

    def __init__(
        self, model: Any, columns: list[Column], chunk_rows: int, aware: bool = True
    ) -> None:
        # datetime=True: aware datetimes become Timestamps in C. Rows read from the
        # database are aware (DateTimeField returns aware UTC on every backend); values
        # set on instances may be naive, and those get a converter (naive means UTC).
        self.packer = msgpack.Packer(default=msgpack_default, autoreset=False, datetime=True)
        self.chunk_rows = chunk_rows
        self.pending = 0
        self.converters = [
            (i, fn)
            for i, c in enumerate(columns)
            if (fn := carrier_converter(c) or (None if aware else naive_converter(c))) is not None
        ]
        label = model._meta.label if model is not None else None
        self.packer.pack(
            {
                "format": FORMAT,
                "version": VERSION,
                "model": label,
                "fields": [c.name for c in columns],
            }
        )

    def add(self, row: Sequence[Any]) -> bytes | None:
        if self.converters:
            row = _converted(row, self.converters)
        self.packer.pack(row)
        self.pending += 1
        if self.pending >= self.chunk_rows:
            return self.take()
        return None

    def take(self) -> bytes:
        data = self.packer.bytes()
        self.packer.reset()
        self.pending = 0
        return data


def _getter(columns: list[Column]) -> Callable[[Any], tuple[Any, ...]]:
    names = [c.attname for c in columns]
    if len(names) == 1:
        name = names[0]
        return lambda obj: (getattr(obj, name),)
    return operator.attrgetter(*names)


def _instance_rows(
    first: Any, rest: Iterator[Any], columns: list[Column]
) -> Iterator[tuple[Any, ...]]:
    model, get = type(first), _getter(columns)
    yield get(first)
    for obj in rest:
        if type(obj) is not model:
            raise SerializerError(
                f"stream_msgpack: got a {type(obj).__qualname__} among {model.__qualname__} "
                f"rows; one stream holds one model"
            )
        yield get(obj)


def stream_msgpack(
    source: Iterable[Any],
    fields: Sequence[str] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[bytes]:
    """Yield a MessagePack stream of model rows as bytes chunks of ``chunk_rows`` rows.

    ``source`` is a QuerySet (read with ``values_list(...).iterator()``: no model
    instances are built) or any iterable of instances of one model, such as
    ``Model.objects.iterator()``. ``fields`` picks and orders the fields (default: every
    concrete field). The whole stream is ``b"".join(...)`` of the chunks.

    :raises ValueError: ``chunk_rows`` is not a positive integer or a field is unknown.
    :raises UnknownFieldTypeError: a field's class has no serializer type.
    """
    chunk_rows = _check_chunk_rows(chunk_rows)
    if _is_queryset(source):
        queryset: Any = source.all() if hasattr(source, "get_queryset") else source  # type: ignore[attr-defined]
        columns = columns_for(queryset.model, fields)
        compiler = direct_compiler(queryset, columns)
        if compiler is not None:
            yield from encode_compiled(queryset.model, columns, compiler, chunk_rows)
        else:
            rows = queryset.values_list(*[c.attname for c in columns]).iterator(chunk_rows)
            yield from encode_rows(queryset.model, columns, rows, chunk_rows)
        return
    iterator = iter(source)
    first = next(iterator, None)
    if first is None:
        yield _Encoder(None, [], chunk_rows).take()
        return
    columns = columns_for(type(first), fields)
    objects = _instance_rows(first, iterator, columns)
    yield from encode_rows(type(first), columns, objects, chunk_rows, aware=False)


def direct_compiler(queryset: Any, columns: list[Column]) -> Any:
    """The compiler of ``values_list(<columns>)``, or None where values_list would
    reorder its columns (then its own iterator is used)."""
    values = queryset.values_list(*[c.attname for c in columns])
    compiler = values.query.get_compiler(values.db)
    compiler.setup()
    if values._values_order(compiler) is not None or compiler.col_count != len(columns):
        return None
    return compiler


def _compose(first: Callable[[Any], Any], then: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: then(first(value))


def _chunk_packer(
    pack: Callable[[Any], Any], width: int, steps: dict[int, Callable[[Any], Any]]
) -> Callable[[Sequence[Any]], None]:
    """A function packing a chunk of rows, compiled for one column layout.

    With no conversions each row goes to the Packer as it is (cut to ``width`` when the
    compiler selected more columns). Otherwise the source is one tuple display per row,
    ``(r[0], None if (v := r[1]) is None else c1(v), ...)``: no per-value loop in Python.
    The source is built from column positions only, never from names or values.
    """
    if not steps:

        def plain(rows: Sequence[Any]) -> None:
            if rows and len(rows[0]) != width:
                for row in rows:
                    pack(row[:width])
            else:
                for row in rows:
                    pack(row)

        return plain
    items = []
    for i in range(width):
        if i in steps:
            items.append(f"None if (v{i} := r[{i}]) is None else c{i}(v{i})")
        else:
            items.append(f"r[{i}]")
    source = f"def packer(rows):\n    for r in rows:\n        pack(({', '.join(items)},))\n"
    namespace: dict[str, Any] = {"pack": pack}
    namespace.update({f"c{i}": fn for i, fn in steps.items()})
    exec(source, namespace)  # positions only, see the docstring
    return namespace["packer"]  # type: ignore[no-any-return]


def encode_compiled(
    model: Any,
    columns: list[Column],
    compiler: Any,
    chunk_rows: int,
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """``values_list(...).iterator()`` and ``encode_rows`` fused, for the QuerySet path.

    The compiler's chunks (a server-side cursor on PostgreSQL, ``chunk_rows`` rows each)
    get the compiler's own converters, so every value is what ``values_list`` returns
    (the tests compare this stream with one built from model instances), then ours; the
    Packer's ``default`` turns decimals, UUIDs and the like into their extensions in the
    same call that packs the row. One chunk in, one chunk out, through a packer compiled
    for the columns (``_chunk_packer``). ``progress(n)`` is called with the row count of
    each chunk.
    """
    encoder = _Encoder(model, columns, chunk_rows)
    steps: dict[int, Callable[[Any], Any]] = dict(compiler.converters())
    for i, convert in encoder.converters:
        steps[i] = _compose(steps[i], convert) if i in steps else convert
    packer = encoder.packer
    pack_chunk = _chunk_packer(packer.pack, compiler.col_count, steps)
    for chunk in compiler.chunks(chunk_rows):
        pack_chunk(chunk)
        if progress is not None:
            progress(len(chunk))
        yield packer.bytes()
        packer.reset()
    tail = packer.bytes()  # the header of an empty result
    if tail:
        yield tail


def encode_rows(
    model: Any,
    columns: list[Column],
    rows: Iterable[Sequence[Any]],
    chunk_rows: int,
    aware: bool = True,
) -> Iterator[bytes]:
    """Yield the header and ``rows`` (value tuples in ``columns`` order) as chunks;
    ``aware=False`` when datetimes may be naive (values of in-memory instances)."""
    encoder = _Encoder(model, columns, chunk_rows, aware)
    packer, converters = encoder.packer, encoder.converters
    pack, pending = packer.pack, 0
    if converters:
        rows = (_converted(row, converters) for row in rows)
    # The hot loop: one C call per row, no method dispatch (see bench/serializers.py).
    for row in rows:
        pack(row)
        pending += 1
        if pending >= chunk_rows:
            yield packer.bytes()
            packer.reset()
            pending = 0
    tail = packer.bytes()
    if tail:
        yield tail


def _converted(row: Sequence[Any], converters: list[tuple[int, Callable[[Any], Any]]]) -> list[Any]:
    values = list(row)
    for i, convert in converters:
        if values[i] is not None:
            values[i] = convert(values[i])
    return values


async def astream_msgpack(
    source: Any,
    fields: Sequence[str] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> AsyncIterator[bytes]:
    """Async twin of ``stream_msgpack`` for ASGI responses.

    ``source`` is a QuerySet (streamed with ``aiterator()``), an async iterable of
    instances (``qs.aiterator()``), or a list or tuple of instances. Packing a chunk is
    pure CPU work on the loop; database reads go through dorm's async path.

    :raises TypeError: ``source`` is another synchronous iterable, which could block the
        event loop on database reads: pass the QuerySet or ``qs.aiterator()`` instead.
    """
    chunk_rows = _check_chunk_rows(chunk_rows)
    encoder: _Encoder | None = None
    if _is_queryset(source):
        queryset: Any = source.all() if hasattr(source, "get_queryset") else source
        columns = columns_for(queryset.model, fields)
        encoder = _Encoder(queryset.model, columns, chunk_rows)
        values = queryset.values_list(*[c.attname for c in columns])
        async for row in values.aiterator(chunk_size=chunk_rows):
            chunk = encoder.add(row)
            if chunk is not None:
                yield chunk
    elif isinstance(source, AsyncIterable):
        get: Callable[[Any], tuple[Any, ...]] | None = None
        model: Any = None
        async for obj in source:
            if encoder is None or get is None:
                model = type(obj)
                columns = columns_for(model, fields)
                encoder = _Encoder(model, columns, chunk_rows, aware=False)
                get = _getter(columns)
            elif type(obj) is not model:
                raise SerializerError(
                    f"astream_msgpack: got a {type(obj).__qualname__} among "
                    f"{model.__qualname__} rows; one stream holds one model"
                )
            chunk = encoder.add(get(obj))
            if chunk is not None:
                yield chunk
    elif isinstance(source, (list, tuple)):
        for chunk in stream_msgpack(source, fields, chunk_rows):
            yield chunk
        return
    else:
        raise TypeError(
            f"astream_msgpack: {type(source).__qualname__} is a synchronous iterable, which "
            f"would block the event loop; pass the QuerySet itself or qs.aiterator()"
        )
    if encoder is None:
        encoder = _Encoder(None, [], chunk_rows)
    tail = encoder.take()
    if tail:
        yield tail


def _unpacker(source: Any) -> Iterator[Any]:
    options: dict[str, Any] = {"ext_hook": ext_hook, "timestamp": 3, "raw": False}
    if isinstance(source, (bytes, bytearray, memoryview)):
        unpacker = msgpack.Unpacker(**options)
        unpacker.feed(source)
        yield from unpacker
        return
    if hasattr(source, "read"):
        yield from msgpack.Unpacker(source, **options)
        return
    unpacker = msgpack.Unpacker(**options)
    for chunk in source:
        unpacker.feed(chunk)
        yield from unpacker


def _header_columns(header: Any, model: Any) -> list[Column]:
    if not (isinstance(header, dict) and header.get("format") == FORMAT):
        raise StreamFormatError(
            f"iter_msgpack: the stream does not start with a {FORMAT} header (got "
            f"{str(header)[:80]!r}); was it written by stream_msgpack?"
        )
    if header.get("version") != VERSION:
        raise StreamFormatError(
            f"iter_msgpack: stream format version {header.get('version')!r}; this "
            f"dorm-serializers reads version {VERSION}"
        )
    label = header.get("model")
    if label is not None and str(label).lower() != model._meta.label.lower():
        raise StreamFormatError(
            f"iter_msgpack: the stream holds {label} rows, not {model._meta.label}"
        )
    names = header.get("fields")
    if not isinstance(names, list):
        raise StreamFormatError(f"iter_msgpack: the header's 'fields' is not a list: {names!r}")
    return columns_for(model, names) if label is not None else []


def build_instance(model: Any, columns: list[Column], values: Sequence[Any], row: int) -> Any:
    """Return an unsaved ``model`` instance from one row's values, or raise RecordError."""
    if not isinstance(values, (list, tuple)) or len(values) != len(columns):
        raise RecordError(
            row, f"expected an array of {len(columns)} values for {model.__name__}, got {values!r}"
        )
    kwargs = {}
    for column, value in zip(columns, values, strict=True):
        if column.vtype.plugin and value is not None:
            try:
                value = column.field.to_python(value)
            except (ValueError, TypeError) as exc:
                raise RecordError(row, f"{model.__name__}.{column.name}: {exc}") from exc
        kwargs[column.attname] = value
    try:
        return model(**kwargs)
    except (ValueError, TypeError) as exc:
        raise RecordError(row, f"{model.__name__}: {exc}") from exc


def iter_msgpack(stream: Any, model: Any) -> Iterator[Any]:
    """Read a ``stream_msgpack`` stream back into unsaved ``model`` instances.

    ``stream`` is bytes, a binary file object, or an iterable of bytes chunks (what
    ``stream_msgpack`` yields); it is read incrementally.

    :raises StreamFormatError: no dorm header, or the stream holds another model.
    :raises RecordError: a row does not fit the model; ``row`` is its 1-based number.
    """
    objects = _unpacker(stream)
    try:
        header = next(objects)
    except StopIteration:
        raise StreamFormatError("iter_msgpack: the stream is empty (no header)") from None
    columns = _header_columns(header, model)
    for row, values in enumerate(objects, start=1):
        yield build_instance(model, columns, values, row)
