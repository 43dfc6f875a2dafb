"""The migration writer: value serialisation, deterministic output and exec round trips."""

from __future__ import annotations

import datetime
import decimal
import os
import subprocess
import sys
import textwrap
import uuid
import zoneinfo
from pathlib import Path
from typing import Any

import pytest

import dorm
import dorm.migrations
from dorm.migrations import operations
from dorm.migrations.writer import MigrationWriter, serialize
from dorm.models.data_fields import uuid7

# A stand-in for a plugin distribution: a field class, an enum and a callable default that
# a migration must import by path.
PLUGIN_SOURCE = textwrap.dedent(
    """
    import enum

    import dorm


    class MoneyField(dorm.DecimalField):
        def __init__(self, *args, currency="EUR", **kwargs):
            self.currency = currency
            super().__init__(*args, **kwargs)

        def deconstruct(self):
            name, path, args, kwargs = super().deconstruct()
            kwargs["currency"] = self.currency
            return name, path, args, kwargs


    class Status(enum.Enum):
        DRAFT = "draft"
        DONE = "done"


    def default_status():
        return "draft"
    """
)

WRITE_SCRIPT = textwrap.dedent(
    """
    import sys
    from decimal import Decimal

    import dorm
    import migplugin
    from dorm.migrations import operations
    from dorm.migrations.writer import MigrationWriter

    fields = [
        ("id", dorm.BigAutoField(primary_key=True)),
        ("price", migplugin.MoneyField(max_digits=8, decimal_places=2, default=Decimal("1"))),
        ("tags", dorm.JSONField(default=list)),
        ("status", dorm.CharField(max_length=10, choices=[("d", "D"), ("x", "X")])),
    ]
    options = {
        "unique_together": [("price", "status")],
        "indexes": [dorm.Index(fields=["status", "-price"], name="item_status_idx")],
        "constraints": [
            dorm.CheckConstraint(condition=dorm.Q(price__gte=0), name="item_price_positive")
        ],
    }
    ops = [
        operations.CreateModel(name="Item", fields=fields, options=options),
        operations.AddField("item", "flags", dorm.JSONField(default={"b": {2, 1}, "a": [3]})),
        operations.AlterField("item", "labels", dorm.JSONField(default=frozenset({"z", "y"}))),
    ]
    writer = MigrationWriter("0002_auto", "shop", [("shop", "0001_initial")], ops)
    sys.stdout.write(writer.as_string())
    """
)


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    (tmp_path / "migplugin.py").write_text(PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    module = importlib.import_module("migplugin")
    yield module
    sys.modules.pop("migplugin", None)


def _canon(value: Any) -> Any:
    """A comparable form: fields and deconstructible objects by their deconstruct()."""
    if isinstance(value, dorm.Field):
        _name, path, args, kwargs = value.deconstruct()
        return ("field", path, _canon(args), _canon(kwargs))
    if isinstance(value, (list, tuple)):
        return type(value)(_canon(v) for v in value)
    if isinstance(value, dict):
        return {k: _canon(v) for k, v in value.items()}
    if isinstance(value, operations.Operation):
        path, args, kwargs = value.deconstruct()
        return ("op", path, _canon(args), _canon(kwargs))
    return value


def _exec(source: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(source, "<migration>", "exec"), namespace)
    return namespace


def _round_trip(value: Any) -> Any:
    text, imports = serialize(value)
    return _exec("\n".join(sorted(imports)) + f"\nresult = {text}\n")["result"]


# -- scalar and container values -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text", "imports"),
    [
        (None, "None", set()),
        (True, "True", set()),
        (-3, "-3", set()),
        (1.5, "1.5", set()),
        (float("inf"), "float('inf')", set()),
        ("it's", '"it\'s"', set()),
        (b"\x00a", "b'\\x00a'", set()),
        (decimal.Decimal("9.50"), "decimal.Decimal('9.50')", {"import decimal"}),
        (datetime.date(2024, 2, 29), "datetime.date(2024, 2, 29)", {"import datetime"}),
        (datetime.time(13, 5), "datetime.time(13, 5)", {"import datetime"}),
        (datetime.timedelta(days=2, seconds=3), "datetime.timedelta(days=2, seconds=3)",
         {"import datetime"}),
        (
            datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
            "datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)",
            {"import datetime"},
        ),
        (
            datetime.datetime(2024, 1, 2, 3, 4, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
            "datetime.datetime(2024, 1, 2, 3, 4, tzinfo=zoneinfo.ZoneInfo('Europe/Paris'))",
            {"import datetime", "import zoneinfo"},
        ),
        (uuid.UUID(int=1), "uuid.UUID('00000000-0000-0000-0000-000000000001')", {"import uuid"}),
        ([1, (2,), ()], "[1, (2,), ()]", set()),
        ({"b", "a", "c"}, "{'a', 'b', 'c'}", set()),
        (set(), "set()", set()),
        (frozenset({2, 1}), "frozenset({1, 2})", set()),
        (frozenset(), "frozenset()", set()),
        ({"b": 1, "a": {"d": 2, "c": 3}}, "{'a': {'c': 3, 'd': 2}, 'b': 1}", set()),
        (int, "int", set()),
        (uuid.uuid4, "uuid.uuid4", {"import uuid"}),
        (uuid7, "dorm.models.data_fields.uuid7", {"import dorm.models.data_fields"}),
        (datetime.datetime.now, "datetime.datetime.now", {"import datetime"}),
        (dorm.CASCADE, "dorm.CASCADE", {"import dorm"}),
        (dorm.Q(b=1, a__gt=2), "dorm.Q(a__gt=2, b=1)", {"import dorm"}),
        (dorm.F("price"), "dorm.F('price')", {"import dorm"}),
    ],
)  # fmt: skip
def test_serialize_values(value: Any, text: str, imports: set[str]) -> None:
    assert serialize(value) == (text, imports)
    assert _round_trip(value) == value


def test_serialize_enum_and_plugin_field_by_import_path(plugin: Any) -> None:
    assert serialize(plugin.Status.DONE) == ("migplugin.Status['DONE']", {"import migplugin"})
    field = plugin.MoneyField(max_digits=8, decimal_places=2, currency="USD")
    text, imports = serialize(field)
    assert text == "migplugin.MoneyField(currency='USD', decimal_places=2, max_digits=8)"
    assert imports == {"import migplugin"}
    assert _canon(_round_trip(field)) == _canon(field)
    default = dorm.CharField(max_length=5, default=plugin.default_status)
    assert serialize(default)[0] == (
        "dorm.CharField(default=migplugin.default_status, max_length=5)"
    )


def test_serialize_fields_constraints_and_q() -> None:
    fk = dorm.ForeignKey("shop.Author", on_delete=dorm.SET_NULL, null=True, related_name="+")
    assert serialize(fk) == (
        "dorm.ForeignKey(null=True, on_delete=dorm.SET_NULL, related_name='+', to='shop.Author')",
        {"import dorm"},
    )
    assert serialize(dorm.ForeignKey("shop.Author", on_delete=dorm.SET(0)))[0] == (
        "dorm.ForeignKey(on_delete=dorm.SET(0), to='shop.Author')"
    )
    assert serialize(dorm.UUIDField(version=7))[0] == "dorm.UUIDField(version=7)"
    check = dorm.CheckConstraint(
        condition=dorm.Q(amount__gt=0) | ~dorm.Q(kind=dorm.F("other")), name="amount_ok"
    )
    text, _imports = serialize(check)
    assert text == (
        "dorm.CheckConstraint(condition=dorm.Q(dorm.Q(amount__gt=0), "
        "dorm.Q(_negated=True, kind=dorm.F('other')), _connector='OR'), name='amount_ok')"
    )
    assert _round_trip(check) == check
    for value in (
        dorm.Index(fields=["-created", "title"], name="t_idx", condition=dorm.Q(live=True)),
        dorm.Index(fields=["title"]),
        dorm.UniqueConstraint(fields=["a", "b"], name="uniq_ab"),
        dorm.Q(("b", 1), ("a", 2)),  # not sorted: must keep its positional form
    ):
        assert _round_trip(value) == value


def _local_function() -> Any:
    def inner() -> None:
        pass

    return inner


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (lambda: 1, "lambda"),
        (_local_function(), "defined inside a function"),
        (object(), "cannot serialize <object object"),
        (dorm.CharField(max_length=3, default=lambda: "x"), "in field"),
    ],
)
def test_serialize_refuses_what_cannot_be_imported(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        serialize(value)


# -- whole files -----------------------------------------------------------------------------------


def test_writer_output_is_readable_and_round_trips() -> None:
    fields = [
        ("id", dorm.BigAutoField(primary_key=True)),
        ("name", dorm.CharField(max_length=50, default="")),
        ("author", dorm.ForeignKey("shop.Author", on_delete=dorm.CASCADE)),
        ("uid", dorm.UUIDField(default=uuid.uuid4)),
    ]
    ops = [
        operations.CreateModel(name="Book", fields=fields, options={"ordering": ["-id"]}),
        operations.RenameField(model_name="book", old_name="name", new_name="title"),
        operations.AddIndex(model_name="book", index=dorm.Index(fields=["title"], name="b_idx")),
        operations.RemoveField(model_name="book", name="uid"),
    ]
    writer = MigrationWriter("0002_auto_book", "shop", [("shop", "0001_initial")], ops)
    source = writer.as_string()
    assert source.startswith('"""shop.0002_auto_book: generated by dorm')
    assert (
        "\nimport dorm\nimport uuid\n\nfrom dorm.migrations import Migration as BaseMigration\n"
        "from dorm.migrations import operations\n\n\nclass Migration(BaseMigration):\n"
    ) in source
    assert "class Migration(BaseMigration):" in source
    assert "        operations.CreateModel(\n            name='Book',\n" in source
    assert (
        "            ('author', dorm.ForeignKey(on_delete=dorm.CASCADE, to='shop.Author')),\n"
        in source
    )
    assert max(len(line) for line in source.splitlines()) < 100
    compile(source, "0002_auto_book.py", "exec")
    migration = _exec(source)["Migration"]("0002_auto_book", "shop")
    assert isinstance(migration, dorm.migrations.Migration)
    assert migration.dependencies == [("shop", "0001_initial")]
    assert _canon(migration.operations) == _canon(ops)
    empty = MigrationWriter("0003_empty", "shop", [], []).as_string()
    assert "    dependencies = []\n" in empty and "    operations = []\n" in empty
    assert _exec(empty)["Migration"].operations == []


def test_writer_names_the_operation_that_cannot_be_written() -> None:
    op = operations.AddField("book", "n", dorm.IntegerField(default=lambda: 1))
    with pytest.raises(ValueError, match="lambda"):
        MigrationWriter("0002_x", "shop", [], [op]).as_string()


def test_writer_output_does_not_depend_on_the_hash_seed(plugin: Any, tmp_path: Path) -> None:
    script = tmp_path / "write_migration.py"
    script.write_text(WRITE_SCRIPT)
    outputs = []
    for seed in ("0", "1", "4242"):
        env = {
            **os.environ,
            "PYTHONHASHSEED": seed,
            "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        }
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, check=True
        )
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    assert "frozenset({'y', 'z'})" in outputs[0] and "{1, 2}" in outputs[0]
    namespace = _exec(outputs[0])
    assert [type(op).__name__ for op in namespace["Migration"].operations] == [
        "CreateModel",
        "AddField",
        "AlterField",
    ]
    create = namespace["Migration"].operations[0]
    assert create.options["indexes"] == [
        dorm.Index(fields=["status", "-price"], name="item_status_idx")
    ]
