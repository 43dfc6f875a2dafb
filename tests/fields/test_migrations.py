"""A model using every extra field goes through makemigrations and migrate, then round-trips."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm.apps import apps
from dorm.cli import main
from dorm.conf import settings
from dorm.db.connection import get_connection, reset_connections

MODELS_SOURCE = """
import dorm
from dorm.contrib.extra_fields import (
    ColorField, CountryField, IPRangeField, JSONSchemaField, Money, MoneyField, PathField,
    PercentageField, PhoneField, SemverField, TimezoneField, autoslug,
)


class Gadget(dorm.Model):
    name = dorm.CharField(max_length=40)
    slug = dorm.SlugField(default=autoslug("name"), unique=True)
    price = MoneyField(currency="JPY", default=Money(0, "JPY"))
    gold = MoneyField(currency="XAU", decimal_places=4, max_digits=12, null=True)
    version = SemverField(max_length=64)
    phone = PhoneField(region="ES", blank=True)
    color = ColorField(default="#FFFFFF")
    spec = JSONSchemaField(schema={"type": "object", "required": ["v"]}, null=True)
    network = IPRangeField(null=True)
    tz = TimezoneField(default="Europe/Madrid")
    path = PathField(allow_absolute=False, allow_parent=False, blank=True)
    completion = PercentageField(decimal_places=1, null=True)
    country = CountryField(blank=True)
"""


def _forget() -> None:
    settings._reset()
    reset_connections()
    apps.clear("gadgets")
    for name in list(sys.modules):
        if name.split(".")[0] in ("gadgets", "settings"):
            del sys.modules[name]
    importlib.invalidate_caches()


def _drop(database: dict[str, Any]) -> None:
    _forget()
    dorm.configure(DATABASES={"default": database})
    conn = get_connection()
    for table in conn.table_names():
        if table.startswith("gadgets_") or table == "dorm_migrations":
            conn.execute(f"DROP TABLE {conn.ops.quote_name(table)}", ())


@pytest.fixture
def project(db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Any]]:
    for name in ("DORM_SETTINGS", "DORM_PROFILE"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    _drop(db.settings)
    (tmp_path / "gadgets").mkdir()
    (tmp_path / "gadgets" / "__init__.py").write_text("")
    (tmp_path / "gadgets" / "models.py").write_text(textwrap.dedent(MODELS_SOURCE))
    (tmp_path / "settings.py").write_text(
        f'DATABASES = {{"default": {db.settings!r}}}\nINSTALLED_APPS = ["gadgets"]\n'
    )
    yield tmp_path, db
    _drop(db.settings)
    _forget()
    dorm.configure(DATABASES={"default": db.settings})


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    _forget()
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_makemigrations_and_migrate_with_every_field(
    project: tuple[Path, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _db = project
    code, out = _run(capsys, "makemigrations")
    assert code == 0, out
    source = (root / "gadgets" / "migrations" / "0001_initial.py").read_text()
    flat = "".join(source.split()).replace(",)", ")")  # the writer wraps long calls
    for expected in (
        "dorm.contrib.extra_fields.MoneyField(currency='JPY', default=dorm.contrib."
        "extra_fields.Money(decimal.Decimal('0'), 'JPY'))",
        "currency='XAU'",
        "decimal_places=4",
        "dorm.contrib.extra_fields.autoslug('name')",
        "dorm.contrib.extra_fields.SemverField(max_length=64)",
        "region='ES'",
        "schema={'required': ['v'], 'type': 'object'}",
        "allow_absolute=False",
        "allow_parent=False",
        "default='Europe/Madrid'",
        "dorm.contrib.extra_fields.PercentageField(decimal_places=1, null=True)",
        "import dorm.contrib.extra_fields",
    ):
        assert "".join(expected.split()) in flat, expected
    # deconstruct() round-trips: the written migration rebuilds the same fields.
    assert _run(capsys, "makemigrations", "--check") == (0, "No changes detected\n")

    code, out = _run(capsys, "migrate")
    assert code == 0 and "Applied 1 migration" in out, out
    gadget = apps.get_model("gadgets", "Gadget")
    gadget.objects.create(
        name="Gold bar",
        price=1500,
        gold="1.2345",
        version="1.0.0",
        phone="612 34 56 78",
        spec={"v": 1},
        network="10.0.0.0/24",
        path="bars/gold.png",
        completion="99.9",
        country="ch",
    )
    loaded = gadget.objects.get()
    assert (loaded.slug, str(loaded.price), str(loaded.gold)) == (
        "gold-bar",
        "1500 JPY",
        "1.2345 XAU",
    )
    assert (loaded.phone, loaded.tz.key, str(loaded.completion), loaded.country) == (
        "+34612345678",
        "Europe/Madrid",
        "99.9",
        "CH",
    )
    assert gadget.objects.filter(network__net_contains="10.0.0.9").count() == 1
