"""Rows per second of ``stream_msgpack`` against two baselines, 100k rows, one run.

``make bench-serializers`` (or ``python bench/serializers.py``). One table of 100,000 rows
(an integer, a short text, a decimal, an aware datetime, a boolean) on SQLite (a file) and
on a throwaway PostgreSQL cluster. Each path turns every row into bytes and the bytes are
counted (not kept):

- ``stream_msgpack(qs)``: ``stream_msgpack(Reading.objects.all())`` (values_list rows,
  a server-side cursor on PostgreSQL, typed values: Decimal and UUID extensions,
  Timestamps);
- ``stream_msgpack(qs.iterator())``: the same from model instances;
- ``json.dumps over values()``: ``json.dumps(row, default=str)`` per dict of
  ``values().iterator()``;
- ``floor``: ``values_list(...).iterator()`` alone, no encoding at all: what dorm-core's
  read path (type conversion included) costs before any serializer runs;
- ``msgpack over raw typed tuples`` (the baseline): the driver's own cursor (a named
  cursor on PostgreSQL, ``fetchmany`` on SQLite) on a connection opened once, each value
  made the Python type its column holds in the fastest plain form (on PostgreSQL the
  driver does it all; on SQLite ``Decimal(str(x)).quantize(...)``, ``fromisoformat`` of
  the stored text with its UTC offset appended, ``bool``), and the same Packer (``datetime
  =True`` and dorm-serializers' ``default`` for decimals): the same rows, byte for byte,
  as ``stream_msgpack`` writes after its header (checked before the timing);
- ``msgpack over untyped tuples``: the driver's tuples as they come with
  ``default=str``: not the same output (on SQLite decimals leave as floats and
  datetimes as text; on PostgreSQL decimals as strings), shown for reference only.

The paths run interleaved, ``ROUNDS`` times; rates are medians, ratios the medians of
the per-round ratios (robust to a machine whose load changes during the run). Target:
``stream_msgpack(qs)`` at 0.7x the raw typed path or better. Results go to
``bench/results/serializers.md``.
"""

from __future__ import annotations

import datetime
import decimal
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROWS = 100_000
ROUNDS = 5
TARGET = 0.7
RAW = "msgpack over raw typed tuples"
UNTYPED = "msgpack over untyped tuples"
COLUMNS = ("id", "value", "label", "amount", "taken", "flag")


def _model() -> Any:
    import dorm

    class Reading(dorm.Model):
        value = dorm.IntegerField()
        label = dorm.CharField(max_length=20)
        amount = dorm.DecimalField(max_digits=10, decimal_places=2)
        taken = dorm.DateTimeField()
        flag = dorm.BooleanField(default=False)

        class Meta:
            app_label = "bench_serializers"

    return Reading


def _fill(model: Any) -> None:
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    model.objects.bulk_create(
        [
            model(
                value=i,
                label=f"reading-{i}",
                amount=decimal.Decimal(i) / 100,
                taken=start + datetime.timedelta(seconds=i),
                flag=i % 2 == 0,
            )
            for i in range(ROWS)
        ],
        batch_size=10_000,
    )


def _paths(model: Any, settings: dict[str, Any], raw: Any) -> dict[str, Callable[[], int]]:
    import msgpack

    from dorm.contrib.serializers import stream_msgpack
    from dorm.contrib.serializers.values import msgpack_default

    table = model._meta.db_table
    sql = f"SELECT {', '.join(COLUMNS)} FROM {table} ORDER BY id"

    def dorm_queryset() -> int:
        return sum(len(c) for c in stream_msgpack(model.objects.order_by("id")))

    def dorm_instances() -> int:
        return sum(len(c) for c in stream_msgpack(model.objects.order_by("id").iterator()))

    def values_list_only() -> int:
        rows = model.objects.order_by("id").values_list(*COLUMNS).iterator(chunk_size=1000)
        return sum(1 for _ in rows)

    def json_values() -> int:
        total = 0
        for row in model.objects.order_by("id").values().iterator(chunk_size=1000):
            total += len(json.dumps(row, default=str)) + 1
        return total

    def rows_of_raw_cursor() -> Iterator[list[tuple[Any, ...]]]:
        if settings["ENGINE"] == "sqlite":
            cur = raw.execute(sql)
            while rows := cur.fetchmany(1000):
                yield rows
            return
        with raw.transaction(), raw.cursor(name="bench_raw") as cur:
            cur.itersize = 1000
            cur.execute(sql)
            while rows := cur.fetchmany(1000):
                yield rows

    def raw_typed(keep: list[bytes] | None = None) -> int:
        packer = msgpack.Packer(default=msgpack_default, datetime=True, autoreset=False)
        pack, total = packer.pack, 0
        if settings["ENGINE"] == "sqlite":
            to_decimal, fromiso = decimal.Decimal, datetime.datetime.fromisoformat
            cents = decimal.Decimal("0.01")
            for rows in rows_of_raw_cursor():
                for id_, value, label, amount, taken, flag in rows:
                    pack(
                        (
                            id_,
                            value,
                            label,
                            to_decimal(str(amount)).quantize(cents),
                            fromiso(taken + "+00:00"),
                            bool(flag),
                        )
                    )
                total += len(packer.getbuffer())
                if keep is not None:
                    keep.append(packer.bytes())
                packer.reset()
            return total
        for rows in rows_of_raw_cursor():
            for row in rows:
                pack(row)
            total += len(packer.getbuffer())
            if keep is not None:
                keep.append(packer.bytes())
            packer.reset()
        return total

    def raw_untyped() -> int:
        packer = msgpack.Packer(default=str, datetime=True)
        total = 0
        for rows in rows_of_raw_cursor():
            for row in rows:
                total += len(packer.pack(row))
        return total

    kept: list[bytes] = []
    raw_typed(kept)
    if not b"".join(stream_msgpack(model.objects.order_by("id"))).endswith(b"".join(kept)):
        raise AssertionError("the raw typed baseline does not write the rows stream_msgpack does")

    return {
        "stream_msgpack(qs)": dorm_queryset,
        "stream_msgpack(qs.iterator())": dorm_instances,
        "json.dumps over values()": json_values,
        "floor: values_list().iterator(), no encoding": values_list_only,
        UNTYPED: raw_untyped,
        RAW: raw_typed,
    }


def _raw_connection(settings: dict[str, Any]) -> Any:
    """The raw driver's connection, opened once (dorm's paths use its pool)."""
    if settings["ENGINE"] == "sqlite":
        import sqlite3

        return sqlite3.connect(settings["NAME"])
    import psycopg

    return psycopg.connect(
        dbname=settings["NAME"],
        user=settings.get("USER") or None,
        host=settings.get("HOST") or None,
        port=settings.get("PORT") or None,
        autocommit=True,
    )


def _run_vendor(settings: dict[str, Any], model: Any) -> dict[str, float]:
    import dorm
    from dorm.db.connection import reset_connections
    from dorm.migrations.schema import SchemaEditor

    dorm.configure(DATABASES={"default": settings})
    with SchemaEditor() as editor:
        editor.create_model(model)
    raw = None
    try:
        _fill(model)
        raw = _raw_connection(settings)
        paths = _paths(model, settings, raw)
        for fn in paths.values():  # warm plans, pools and caches
            fn()
        samples: dict[str, list[float]] = {name: [] for name in paths}
        ratios: dict[str, list[float]] = {name: [] for name in paths}
        for round_ in range(ROUNDS):
            order = list(paths) if round_ % 2 == 0 else list(reversed(paths))
            rates = {}
            for name in order:
                gc.collect()
                start = time.perf_counter()
                paths[name]()
                rates[name] = ROWS / (time.perf_counter() - start)
            for name, rate in rates.items():
                samples[name].append(rate)
                ratios[name].append(rate / rates[RAW])
        result = {name: statistics.median(values) for name, values in samples.items()}
        result.update({f"ratio:{name}": statistics.median(r) for name, r in ratios.items()})
        return result
    finally:
        if raw is not None:
            raw.close()
        with SchemaEditor() as editor:
            editor.delete_model(model)
        reset_connections()


def main() -> int:
    sys.path.insert(0, str(BENCH.parent / "tests"))
    from dorm.contrib.serializers import plugin
    from dorm.plugins import get_plugin_manager, register
    from dorm.test.postgres import PgCluster, find_pg_bindir

    if not get_plugin_manager().is_registered(plugin):
        register(plugin, name="serializers")
    model = _model()
    table: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        table["sqlite"] = _run_vendor({"ENGINE": "sqlite", "NAME": str(Path(tmp) / "b.db")}, model)
    bindir = find_pg_bindir()
    if bindir is not None:
        cluster = PgCluster(bindir)
        cluster.start()
        try:
            cluster.create_database("bench_serializers")
            table["postgresql"] = _run_vendor(cluster.settings("bench_serializers"), model)
        finally:
            cluster.stop()
    lines = [
        f"# dorm-serializers: rows/s over {ROWS:,} rows (median of {ROUNDS}; higher is better)",
        "",
        "Ratio = rows/s of the path / rows/s of msgpack over the driver's raw tuples, typed "
        "(the same rows, byte for byte, as stream_msgpack writes) in the "
        f"same round (median of the {ROUNDS} paired ratios). "
        f"Target: stream_msgpack(qs) at {TARGET}x or better.",
        "",
        "| path | " + " | ".join(f"{v} rows/s | {v} ratio" for v in table) + " |",
        "|---|" + "---|---|" * len(table),
    ]
    for name in (n for n in table["sqlite"] if not n.startswith("ratio:")):
        cells = []
        for vendor in table:
            rate, ratio = table[vendor][name], table[vendor][f"ratio:{name}"]
            mark = " (under target)" if name == "stream_msgpack(qs)" and ratio < TARGET else ""
            cells.append(f"{rate:,.0f} | {ratio:.2f}x{mark}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / "serializers.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
