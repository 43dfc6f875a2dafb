"""dorm-tasks works in a virtual environment that holds only dorm-core and dorm-tasks.

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
import tempfile
import dorm
from dorm import transaction
from dorm.cli import main
from dorm.contrib.outbox import OutboxEvent
from dorm.contrib.tasks import TaskQueue, task
from dorm.migrations.schema import SchemaEditor

class Job(OutboxEvent):
    class Meta:
        app_label = "demo"

queue = TaskQueue(model=Job, channel=None)
seen = []

@task(queue, name="add")
def add(a, b):
    seen.append(a + b)

dorm.configure(DATABASES={"default": {"ENGINE": "sqlite",
                                      "NAME": tempfile.mkdtemp() + "/db.sqlite3"}})
with SchemaEditor() as editor:
    editor.create_model(Job)
with transaction.atomic():
    add.delay(1, 2)
try:
    with transaction.atomic():
        add.delay(3, 4)
        raise KeyError
except KeyError:
    pass
print(queue.run(once=True), seen, list(Job.objects.values_list("status", flat=True)))
try:
    import dorm.contrib.temporal
except ImportError:
    print("no temporal plugin")
try:
    import dorm.contrib.extra_fields
except ImportError:
    print("no fields plugin")
"""


def test_core_and_tasks_alone_in_a_fresh_venv(tmp_path: Path, isolated_venv: Any) -> None:
    venv = isolated_venv(
        ["dorm-core", "dorm-tasks"],
        deps=["pluggy", "greenlet", "croniter", "pytest"],
        install=["dorm-core", "dorm-tasks"],
    )
    assert venv.script_lines(SCRIPT, tmp_path) == [
        "1 [3] ['done']",
        "no temporal plugin",
        "no fields plugin",
    ]
    helptext = venv.dorm_help(tmp_path)
    assert "worker" in helptext and "tasks" in helptext
    # The plugin's own tests, SQLite half, with only dorm-core and dorm-tasks installed.
    venv.run_sqlite_tests("tests/tasks/test_queue.py")
    venv.assert_installed("dorm.contrib.tasks", tmp_path)
