"""dorm-temporal works in a virtual environment that holds only dorm-core and dorm-temporal.

The wheels are built here; their dependencies (and pytest, to run the plugin's own tests
there) are copied from this environment, so the test needs no network.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

SCRIPT = """
import datetime
import tempfile
import dorm
from dorm.contrib.temporal import as_of, temporal
from dorm.migrations.schema import SchemaEditor

@temporal
class Page(dorm.Model):
    title = dorm.CharField(max_length=20)
    class Meta:
        app_label = "demo"

dorm.configure(DATABASES={"default": {"ENGINE": "sqlite",
                                      "NAME": tempfile.mkdtemp() + "/db.sqlite3"}})
with SchemaEditor() as editor:
    editor.create_model(Page._temporal_model)
    editor.create_model(Page)
page = Page.objects.create(title="a")
t = datetime.datetime.now(datetime.UTC)
with temporal.context(user="ann"):
    Page.objects.filter(pk=page.pk).update(title="b")
print(as_of(Page, t).get().title, [(v.title, v.user) for v in Page.history.filter(pk=page.pk)])
for name in ("tasks", "extra_fields"):
    try:
        __import__("dorm.contrib." + name)
    except ImportError:
        print("no", name)
"""


def test_core_and_temporal_alone_in_a_fresh_venv(tmp_path: Path, isolated_venv: Any) -> None:
    venv = isolated_venv(
        ["dorm-core", "dorm-temporal"],
        deps=["pluggy", "greenlet", "pytest"],
        install=["dorm-core", "dorm-temporal"],
    )
    python, env, purelib = venv.python, venv.env, venv.purelib
    result = subprocess.run(
        [str(python), "-c", SCRIPT], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "a [('a', None), ('b', 'ann')]",
        "no tasks",
        "no extra_fields",
    ]
    helptext = subprocess.run(
        [str(venv.root / "bin" / "dorm"), "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    ).stdout
    assert "temporal" in helptext and "worker" not in helptext
    # The plugin's own tests, SQLite half, with only dorm-core and dorm-temporal installed.
    tests = subprocess.run(
        [
            str(python),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "sqlite",
            "tests/temporal/test_capture.py",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout
    location = subprocess.run(
        [str(python), "-c", "import dorm.contrib.temporal as t; print(t.__file__)"],
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    assert location.startswith(str(purelib)), location
