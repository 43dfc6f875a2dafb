"""dorm-serializers works in a virtual environment that holds only dorm-core and
dorm-serializers (and msgpack, its one dependency).

The wheels are built here; their dependencies (and pytest, to run the plugin's own tests
there) are copied from this environment, so the test needs no network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

SCRIPT = """
import decimal
import tempfile
import dorm
from dorm.contrib.serializers import iter_msgpack, json_schema_for, stream_msgpack
from dorm.migrations.schema import SchemaEditor

class Page(dorm.Model):
    title = dorm.CharField(max_length=20)
    price = dorm.DecimalField(max_digits=5, decimal_places=2)
    class Meta:
        app_label = "demo"

dorm.configure(DATABASES={"default": {"ENGINE": "sqlite",
                                      "NAME": tempfile.mkdtemp() + "/db.sqlite3"}})
with SchemaEditor() as editor:
    editor.create_model(Page)
Page.objects.create(title="a", price=decimal.Decimal("1.50"))
(copy,) = iter_msgpack(b"".join(stream_msgpack(Page.objects.all())), Page)
print(copy.title, copy.price, json_schema_for(Page)["properties"]["price"]["type"])
for name in ("tasks", "extra_fields"):
    try:
        __import__("dorm.contrib." + name)
    except ImportError:
        print("no", name)
"""


def test_core_and_serializers_alone_in_a_fresh_venv(tmp_path: Path, isolated_venv: Any) -> None:
    venv = isolated_venv(
        ["dorm-core", "dorm-serializers"],
        deps=["pluggy", "greenlet", "msgpack", "pytest"],
        install=["dorm-core", "dorm-serializers"],
    )
    assert venv.script_lines(SCRIPT, tmp_path) == ["a 1.50 string", "no tasks", "no extra_fields"]
    helptext = venv.dorm_help(tmp_path)
    assert "serializers" in helptext and "worker" not in helptext
    # The plugin's own tests, SQLite half, with only dorm-core and dorm-serializers.
    venv.run_sqlite_tests("tests/serializers/test_streams.py")
    venv.assert_installed("dorm.contrib.serializers", tmp_path)
