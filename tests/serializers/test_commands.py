"""``dorm serializers dump`` and ``dorm serializers load``, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime
import decimal
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm.cli import main
from dorm.contrib.serializers import iter_msgpack

LABEL = "ser_cli.Entry"


class Entry(dorm.Model):
    name = dorm.CharField(max_length=12)
    amount = dorm.DecimalField(max_digits=6, decimal_places=2)
    seen = dorm.DateTimeField(null=True)
    tags = dorm.JSONField(default=list)

    class Meta:
        app_label = "ser_cli"
        ordering = ["id"]


MODELS = [Entry]

pytestmark = pytest.mark.usefixtures("clean_tables")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _fill(count: int) -> list[tuple[Any, ...]]:
    start = datetime.datetime(2026, 5, 1, tzinfo=datetime.UTC)
    Entry.objects.bulk_create(
        [
            Entry(
                name=f"e{i}",
                amount=decimal.Decimal(i) / 4,
                seen=start + datetime.timedelta(minutes=i) if i % 3 else None,
                tags=["t", i],
            )
            for i in range(count)
        ]
    )
    return _table()


def _table() -> list[tuple[Any, ...]]:
    return list(Entry.objects.values_list("id", "name", "amount", "seen", "tags"))


@pytest.mark.parametrize("fmt", ["msgpack", "jsonl"])
def test_dump_then_load_restores_the_table(tmp_path: Path, fmt: str, capsys: Any) -> None:
    rows = _fill(25)
    out = tmp_path / f"entries.{fmt}"
    argv = ["serializers", "dump", LABEL, "--format", fmt, "--chunk-rows", "10", "-o", str(out)]
    assert main(argv) == 0
    if fmt == "msgpack":
        assert len(list(iter_msgpack(out.read_bytes(), Entry))) == 25
    else:
        assert json.loads(out.read_text().splitlines()[1])["amount"] == "0.25"
    Entry.objects.all().delete()
    argv = ["serializers", "load", LABEL, "--format", fmt, "--batch-size", "7", "-i", str(out)]
    assert main(argv) == 0
    assert "ser_cli.Entry: 25 rows loaded" in capsys.readouterr().err
    assert _table() == rows


def test_progress_is_shown_on_a_terminal_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    _fill(2500)
    out = tmp_path / "entries.msgpack"
    assert main(["serializers", "dump", LABEL, "-o", str(out)]) == 0
    assert "rows dumped" not in capsys.readouterr().err  # not a terminal: silent
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["serializers", "dump", LABEL, "-o", str(out)]) == 0
    shown = terminal.getvalue()
    assert shown.split("\r")[1:] == [
        "ser_cli.Entry: 1000 rows dumped",
        "ser_cli.Entry: 2000 rows dumped",
        "ser_cli.Entry: 2500 rows dumped\n",
    ]
    Entry.objects.all().delete()
    terminal.seek(0)
    terminal.truncate()
    assert main(["serializers", "load", LABEL, "-i", str(out)]) == 0
    assert "\rser_cli.Entry: 2500 rows loaded\n" in terminal.getvalue()
    assert Entry.objects.count() == 2500


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"name": "x", "amount": "1.234"}', r"amount"),  # too many decimal places
        ('{"name": "far too long a name", "amount": "1"}', r"name"),  # max_length
        ('{"name": "x", "amount": "abc"}', r"Entry\.amount: 'abc' is not a decimal value"),
        ('{"name": "x", "amount": "1", "colour": "red"}', r"no field 'colour'"),
        ('["x", 1]', r"expected a JSON object"),
        ("{not json", r"not JSON"),
    ],
)
def test_load_names_the_row_of_a_bad_record_and_loads_nothing(
    tmp_path: Path, line: str, problem: str, capsys: Any
) -> None:
    good = '{"name": "ok", "amount": "1.50"}'
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([good, good, line, good]) + "\n")
    # --batch-size 1: two INSERTs have run when record 3 fails; the transaction undoes them.
    argv = ["serializers", "load", LABEL, "--format", "jsonl", "--batch-size", "1"]
    assert main([*argv, "-i", str(path)]) == 1
    err = capsys.readouterr().err
    assert "record 3:" in err and "nothing was loaded" in err, err
    assert re.search(problem, err), err
    assert Entry.objects.count() == 0


def test_load_of_a_msgpack_row_that_does_not_fit(tmp_path: Path, capsys: Any) -> None:
    import msgpack

    header = {"format": "dorm-msgpack", "version": 1, "model": LABEL, "fields": ["name", "amount"]}
    good = ["ok", msgpack.ExtType(1, b"2.00")]
    path = tmp_path / "in.msgpack"
    path.write_bytes(b"".join(msgpack.packb(o) for o in [header, good, ["x" * 20, good[1]]]))
    assert main(["serializers", "load", LABEL, "-i", str(path)]) == 1
    assert "record 2:" in capsys.readouterr().err
    assert Entry.objects.count() == 0


def test_bad_command_lines_are_one_line_errors(tmp_path: Path, capsys: Any) -> None:
    assert main(["serializers", "dump", "ser_cli.Nope", "-o", str(tmp_path / "x")]) == 1
    assert "no model ser_cli.Nope" in capsys.readouterr().err
    assert main(["serializers", "dump", LABEL, "--fields", "name,zip"]) == 1
    assert "has no concrete field 'zip'" in capsys.readouterr().err
    assert main(["serializers", "load", LABEL, "-i", str(tmp_path / "missing")]) == 1
    assert "No such file" in capsys.readouterr().err
    assert main(["serializers", "load", LABEL, "--batch-size", "0"]) == 1
    assert "--batch-size must be at least 1" in capsys.readouterr().err


def test_help_lists_the_command(capsys: Any) -> None:
    assert main(["--help"]) == 0
    assert "serializers    dump a model's rows as MessagePack" in capsys.readouterr().out
