"""makemigrations writes the version model; migrate installs the triggers, zero removes them."""

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
from dorm.contrib.temporal import temporal


class Shelf(dorm.Model):
    name = dorm.CharField(max_length=20)


@temporal
class Volume(dorm.Model):
    title = dorm.CharField(max_length=40, unique=True)
    shelf = dorm.ForeignKey(Shelf, on_delete=dorm.CASCADE, null=True)
"""


def _forget() -> None:
    settings._reset()
    reset_connections()
    apps.clear("shelves")
    for name in list(sys.modules):
        if name.split(".")[0] in ("shelves", "settings"):
            del sys.modules[name]
    importlib.invalidate_caches()


def _drop(database: dict[str, Any]) -> None:
    _forget()
    dorm.configure(DATABASES={"default": database})
    conn = get_connection()
    for table in sorted(conn.table_names(), key=lambda t: t == "shelves_shelf"):
        if table.startswith("shelves_") or table == "dorm_migrations":
            cascade = " CASCADE" if conn.vendor == "postgresql" else ""
            conn.execute(f"DROP TABLE IF EXISTS {conn.ops.quote_name(table)}{cascade}", ())


@pytest.fixture
def project(
    backend: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Any]]:
    for name in ("DORM_SETTINGS", "DORM_PROFILE"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    _drop(backend.settings)
    (tmp_path / "shelves").mkdir()
    (tmp_path / "shelves" / "__init__.py").write_text("")
    (tmp_path / "shelves" / "models.py").write_text(textwrap.dedent(MODELS_SOURCE))
    (tmp_path / "settings.py").write_text(
        f'DATABASES = {{"default": {backend.settings!r}}}\nINSTALLED_APPS = ["shelves"]\n'
    )
    yield tmp_path, backend
    _drop(backend.settings)
    _forget()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    _forget()
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_makemigrations_migrate_and_back_to_zero(
    project: tuple[Path, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _backend = project
    code, out = _run(capsys, "makemigrations")
    assert code == 0, out
    source = (root / "shelves" / "migrations" / "0001_initial.py").read_text()
    assert "VolumeTemporal" in source
    assert "dorm.contrib.temporal.tracking.MirrorColumn(" in source
    assert "to='shelves.Shelf'" in source
    assert _run(capsys, "makemigrations", "--check") == (0, "No changes detected\n")

    code, out = _run(capsys, "migrate")
    assert code == 0, out
    volume = apps.get_model("shelves", "Volume")
    shelf = apps.get_model("shelves", "Shelf").objects.create(name="s")
    v = volume.objects.create(title="a", shelf=shelf)
    volume.objects.filter(pk=v.pk).update(title="b")
    assert [(h.operation, h.title, h.shelf_id) for h in volume.history.filter(pk=v.pk)] == [
        ("insert", "a", shelf.pk),
        ("update", "b", shelf.pk),
    ]
    code, out = _run(capsys, "temporal", "status", "--model", "shelves.Volume")
    assert code == 0 and "shelves.Volume: 2 version(s), 1 current, triggers ok" in out, out

    # A field added and one altered (on SQLite a table rebuild, which drops triggers):
    # the migration re-creates the triggers, which then copy the new column.
    (root / "shelves" / "models.py").write_text(
        textwrap.dedent(MODELS_SOURCE).replace("max_length=40", "max_length=80")
        + "    pages = dorm.IntegerField(default=0)\n"
    )
    code, out = _run(capsys, "makemigrations")
    assert code == 0, out
    code, out = _run(capsys, "migrate")
    assert code == 0, out
    volume = apps.get_model("shelves", "Volume")
    volume.objects.filter(pk=v.pk).update(pages=7)
    # Versions written before the column existed have NULL there.
    assert [(h.operation, h.pages) for h in volume.history.filter(pk=v.pk)] == [
        ("insert", None),
        ("update", None),
        ("update", 7),
    ]
    code, out = _run(capsys, "temporal", "status", "--model", "shelves.Volume")
    assert code == 0 and "3 version(s), 1 current, triggers ok" in out, out

    code, out = _run(capsys, "migrate", "shelves", "zero")
    assert code == 0, out
    conn = get_connection()
    assert not [t for t in conn.table_names() if t.startswith("shelves_")]
    if conn.vendor == "sqlite":
        left = conn.fetchall("SELECT name FROM sqlite_master WHERE type = 'trigger'", ())
    else:
        left = conn.fetchall(
            "SELECT proname FROM pg_catalog.pg_proc WHERE proname LIKE %s", ("shelves%",)
        )
    assert left == []


def _versions(volume: Any, pk: Any) -> list[tuple[str, str]]:
    return [(h.operation, h.title) for h in volume.history.filter(pk=pk)]


def test_a_renamed_tracked_table_keeps_one_set_of_triggers(
    project: tuple[Path, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _backend = project
    assert _run(capsys, "makemigrations")[0] == 0
    assert _run(capsys, "migrate")[0] == 0
    volume = apps.get_model("shelves", "Volume")
    v = volume.objects.create(title="a")

    (root / "shelves" / "models.py").write_text(
        textwrap.dedent(MODELS_SOURCE) + '\n    class Meta:\n        db_table = "shelves_books"\n'
    )
    code, out = _run(capsys, "makemigrations")
    assert code == 0 and "Rename table for Volume to shelves_books" in out, out
    code, out = _run(capsys, "migrate")
    assert code == 0, out
    volume = apps.get_model("shelves", "Volume")
    volume.objects.filter(pk=v.pk).update(title="b")
    # One version per change: the triggers named after the old table are gone.
    assert _versions(volume, v.pk) == [("insert", "a"), ("update", "b")]
    code, out = _run(capsys, "temporal", "status", "--model", "shelves.Volume")
    assert code == 0 and "2 version(s), 1 current, triggers ok" in out, out

    code, out = _run(capsys, "migrate", "shelves", "0001_initial")
    assert code == 0, out
    (root / "shelves" / "models.py").write_text(textwrap.dedent(MODELS_SOURCE))
    assert _run(capsys, "temporal", "status", "--model", "shelves.Volume")[0] == 0
    volume = apps.get_model("shelves", "Volume")
    volume.objects.filter(pk=v.pk).update(title="c")
    assert _versions(volume, v.pk) == [("insert", "a"), ("update", "b"), ("update", "c")]
    conn = get_connection()
    if conn.vendor == "sqlite":
        names = conn.fetchall("SELECT name FROM sqlite_master WHERE type = 'trigger'", ())
    else:
        names = conn.fetchall(
            "SELECT tgname FROM pg_catalog.pg_trigger WHERE NOT tgisinternal AND tgname LIKE %s",
            ("shelves%",),
        )
    assert sorted(n for (n,) in names) == [
        "shelves_volume_temporal_delete",
        "shelves_volume_temporal_insert",
        "shelves_volume_temporal_update",
    ]
