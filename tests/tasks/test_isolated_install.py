"""dorm-tasks works in a virtual environment that holds only dorm-core and dorm-tasks.

The wheels are built here; their dependencies (and pytest, to run the plugin's own tests
there) are copied from this environment, so the test needs no network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

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


def _closure(names: list[str]) -> list[metadata.Distribution]:
    """The installed distributions ``names`` need, themselves included (extras ignored)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        dist = metadata.distribution(todo.pop())
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in seen:
            continue
        seen[key] = dist
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(seen.values())


def test_core_and_tasks_alone_in_a_fresh_venv(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    for pkg in ("dorm-core", "dorm-tasks"):
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, hatchling.build as b; b.build_wheel(sys.argv[1])",
                str(wheels),
            ],
            cwd=REPO / "packages" / pkg,
            check=True,
            capture_output=True,
        )
    root = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "VIRTUAL_ENV", "DORM_SETTINGS"))
    }
    purelib = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout.strip()
    )
    for dist in _closure(["pluggy", "greenlet", "croniter", "pytest"]):
        for file in dist.files or []:
            if str(file).startswith(".."):
                continue
            target = purelib / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(dist.locate_file(file), target)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "--disable-pip-version-check",
            "install",
            "--no-index",
            "--find-links",
            str(wheels),
            "dorm-core",
            "dorm-tasks",
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    result = subprocess.run(
        [str(python), "-c", SCRIPT], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "1 [3] ['done']",
        "no temporal plugin",
        "no fields plugin",
    ]
    dorm = root / "bin" / "dorm"
    helptext = subprocess.run(
        [str(dorm), "--help"], capture_output=True, text=True, env=env, cwd=tmp_path
    ).stdout
    assert "worker" in helptext and "tasks" in helptext
    # The plugin's own tests, SQLite half, with only dorm-core and dorm-tasks installed.
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
            "tests/tasks/test_queue.py",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout
    location = subprocess.run(
        [str(python), "-c", "import dorm.contrib.tasks as t; print(t.__file__)"],
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    assert location.startswith(str(purelib)), location
