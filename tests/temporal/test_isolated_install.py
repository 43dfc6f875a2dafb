"""dorm-temporal works in a virtual environment that holds only dorm-core and dorm-temporal.

The wheels are built here; their dependencies (and pytest, to run the plugin's own tests
there) are copied from this environment, so the test needs no network.
"""

from __future__ import annotations

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
    assert venv.script_lines(SCRIPT, tmp_path) == [
        "a [('a', None), ('b', 'ann')]",
        "no tasks",
        "no extra_fields",
    ]
    helptext = venv.dorm_help(tmp_path)
    assert "temporal" in helptext and "worker" not in helptext
    # The plugin's own tests, SQLite half, with only dorm-core and dorm-temporal installed.
    venv.run_sqlite_tests("tests/temporal/test_capture.py")
    venv.assert_installed("dorm.contrib.temporal", tmp_path)
