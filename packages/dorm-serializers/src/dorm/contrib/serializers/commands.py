"""``dorm serializers dump`` and ``dorm serializers load``: stream a model's rows out and in."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import IO, Any

from dorm.cli.migration_commands import SettingsCommand
from dorm.contrib.serializers.exceptions import SerializerError
from dorm.exceptions import CommandError, ValidationError

__all__ = ["COMMANDS", "SerializersCommand", "load_rows"]

FORMATS = ("msgpack", "jsonl")


class _Progress:
    """A ``\\r``-rewritten row count on stderr, shown only when stderr is a terminal."""

    def __init__(self, label: str, verb: str) -> None:
        self.stream = sys.stderr
        self.shown = self.stream.isatty()
        self.label, self.verb, self.count = label, verb, 0

    def add(self, rows: int) -> None:
        before = self.count
        self.count += rows
        if self.shown and self.count // 1000 != before // 1000:
            self.stream.write(f"\r{self.label}: {self.count} rows {self.verb}")
            self.stream.flush()

    def done(self) -> None:
        if self.shown:
            self.stream.write(f"\r{self.label}: {self.count} rows {self.verb}\n")
            self.stream.flush()


def _model(label: str) -> Any:
    from dorm.apps import apps

    try:
        return apps.get_model(label)
    except LookupError as exc:
        raise CommandError(str(exc)) from None


def _chunks(
    model: Any,
    fmt: str,
    fields: list[str] | None,
    chunk_rows: int,
    progress: _Progress,
    using: str,
) -> Iterator[bytes]:
    from dorm.contrib.serializers.jsonl import stream_jsonl
    from dorm.contrib.serializers.registry import columns_for
    from dorm.contrib.serializers.streams import direct_compiler, encode_compiled, encode_rows

    queryset = model.objects.using(using).order_by("pk")
    if fmt == "jsonl":
        for chunk in stream_jsonl(queryset, fields, chunk_rows):
            progress.add(chunk.count(b"\n"))
            yield chunk
        return
    columns = columns_for(model, fields)
    compiler = direct_compiler(queryset, columns)
    if compiler is not None:
        yield from encode_compiled(model, columns, compiler, chunk_rows, progress.add)
        return

    def counted() -> Iterator[Any]:
        rows = queryset.values_list(*[c.attname for c in columns]).iterator(chunk_rows)
        for row in rows:
            progress.add(1)
            yield row

    yield from encode_rows(model, columns, counted(), chunk_rows)


def _stored_empties(obj: Any) -> list[str]:
    """Fields holding an empty value their column stores: ``blank`` is a form rule, and a
    dump holds what the table held (None only where the field is nullable)."""
    names = []
    for f in obj._meta.concrete_fields:
        value = getattr(obj, f.attname)
        if (value is None and f.null) or (value is not None and value in f.empty_values):
            names.append(f.name)
    return names


def load_rows(
    model: Any, stream: IO[bytes], fmt: str, batch_size: int = 1000, using: str = "default"
) -> int:
    """Insert the records of ``stream`` into ``model``'s table in one transaction,
    ``batch_size`` rows per INSERT, each record checked with ``full_clean`` first (all
    but the ``blank`` rule; uniqueness is left to the database).

    :raises RecordError: a record does not fit the model; nothing is inserted.
    """
    from dorm import transaction
    from dorm.contrib.serializers.exceptions import RecordError
    from dorm.contrib.serializers.jsonl import iter_jsonl
    from dorm.contrib.serializers.streams import iter_msgpack

    objects = iter_jsonl(stream, model) if fmt == "jsonl" else iter_msgpack(stream, model)
    progress = _Progress(model._meta.label, "loaded")
    manager = model.objects.using(using)
    batch: list[Any] = []
    with transaction.atomic(using=using):
        for row, obj in enumerate(objects, start=1):
            try:
                obj.full_clean(
                    exclude=_stored_empties(obj), validate_unique=False, validate_constraints=False
                )
            except ValidationError as exc:
                raise RecordError(row, str(exc)) from None
            batch.append(obj)
            if len(batch) >= batch_size:
                manager.bulk_create(batch)
                progress.add(len(batch))
                batch = []
        if batch:
            manager.bulk_create(batch)
            progress.add(len(batch))
    progress.done()
    return progress.count


class SerializersCommand(SettingsCommand):
    name = "serializers"
    help = "dump a model's rows as MessagePack or JSON Lines, or load them back"
    # The settings' INSTALLED_APPS are imported when the settings load; scripts and
    # tests that configure dorm in code have their models without any app list.
    needs_apps = False

    def add_command_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="<action>", required=True)
        dump = sub.add_parser("dump", help="write every row of app.Model to stdout or --output")
        load = sub.add_parser("load", help="insert rows from stdin or --input into app.Model")
        for p in (dump, load):
            p.add_argument("model", metavar="app.Model")
            p.add_argument("--format", choices=FORMATS, default="msgpack")
        dump.add_argument("--fields", metavar="a,b,c", help="fields to write (default: all)")
        dump.add_argument("--chunk-rows", type=int, default=1000, metavar="N")
        dump.add_argument("--output", "-o", metavar="FILE", help="default: stdout")
        load.add_argument("--input", "-i", metavar="FILE", help="default: stdin")
        load.add_argument("--batch-size", type=int, default=1000, metavar="N")

    def run(self, args: argparse.Namespace) -> int | None:
        model = _model(args.model)
        if args.action == "dump":
            return self._dump(model, args)
        if args.batch_size < 1:
            raise CommandError(f"--batch-size must be at least 1, got {args.batch_size}")
        with contextlib.ExitStack() as stack:
            if args.input:
                try:
                    stream: IO[bytes] = stack.enter_context(open(args.input, "rb"))
                except OSError as exc:
                    raise CommandError(f"--input {args.input!r}: {exc.strerror}") from None
            else:
                stream = sys.stdin.buffer
            try:
                count = load_rows(model, stream, args.format, args.batch_size, self.alias)
            except (SerializerError, ValidationError) as exc:
                raise CommandError(f"{args.model}: {exc}; nothing was loaded") from exc
        print(f"{model._meta.label}: {count} rows loaded", file=sys.stderr)
        return 0

    def _dump(self, model: Any, args: argparse.Namespace) -> int:
        fields = [f.strip() for f in args.fields.split(",")] if args.fields else None
        if args.chunk_rows < 1:
            raise CommandError(f"--chunk-rows must be at least 1, got {args.chunk_rows}")
        progress = _Progress(model._meta.label, "dumped")
        with contextlib.ExitStack() as stack:
            out: IO[bytes] = (
                stack.enter_context(open(args.output, "wb")) if args.output else sys.stdout.buffer
            )
            try:
                for chunk in _chunks(
                    model, args.format, fields, args.chunk_rows, progress, self.alias
                ):
                    out.write(chunk)
            except (SerializerError, ValueError) as exc:
                raise CommandError(f"{args.model}: {exc}") from exc
            out.flush()
        progress.done()
        return 0


COMMANDS: list[type[SettingsCommand]] = [SerializersCommand]
