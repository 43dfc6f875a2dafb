"""dorm-async works in a virtual environment that holds only dorm-core and dorm-async.

The wheels are built here; their dependencies (and pytest, to run the plugin's own tests
there) are copied from this environment, so the test needs no network. Without dorm-tasks,
``BackgroundTasks(durable=True)`` names the missing distribution.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

SCRIPT = """
import asyncio
import tempfile
import dorm
from dorm import plugins
from dorm.contrib.background import BackgroundTasks, DurableUnavailableError
from dorm.contrib.dataloader import DataLoader
from dorm.contrib.sync_dataloader import SyncDataLoader
from dorm.migrations.schema import SchemaEditor
from dorm.test import CaptureQueriesContext

class Author(dorm.Model):
    name = dorm.CharField(max_length=20)
    class Meta:
        app_label = "demo"

class Book(dorm.Model):
    author = dorm.ForeignKey(Author, on_delete=dorm.CASCADE)
    class Meta:
        app_label = "demo"

dorm.configure(DATABASES={"default": {"ENGINE": "sqlite",
                                      "NAME": tempfile.mkdtemp() + "/db.sqlite3"}})
with SchemaEditor() as editor:
    editor.create_model(Author)
    editor.create_model(Book)
authors = Author.objects.bulk_create([Author(name=n) for n in ("ann", "bob")])
Book.objects.bulk_create([Book(author=authors[i % 2]) for i in range(20)])
books = list(Book.objects.all())

with CaptureQueriesContext() as queries:
    loader = SyncDataLoader(lambda ids: Author.objects.in_bulk(ids))
    for book in books:
        loader.load(book.author_id)
    loader.flush()
    names = sorted({loader.load(book.author_id).name for book in books})
print(len(queries), names)

async def main():
    aloader = DataLoader(lambda ids: Author.objects.ain_bulk(ids))
    with CaptureQueriesContext() as aqueries:
        found = await asyncio.gather(*(aloader.load(b.author_id) for b in books))
    bg = BackgroundTasks(concurrency=2)
    bg.add(Author.objects.create, name="thread")
    bg.add(Author.objects.acreate, name="loop")
    await bg.run()
    return len(aqueries), len(found)

print(*asyncio.run(main()), Author.objects.count())
try:
    BackgroundTasks(durable=True)
except DurableUnavailableError as exc:
    print(type(exc).__mro__[1].__name__, isinstance(exc, ImportError), str(exc).split(": ")[0])
print([(i.name, i.distribution) for i in plugins.plugin_infos() if i.name == "async"])
try:
    import dorm.contrib.tasks
except ImportError:
    print("no tasks")
"""


def test_core_and_async_alone_in_a_fresh_venv(tmp_path: Path, isolated_venv: Any) -> None:
    venv = isolated_venv(
        ["dorm-core", "dorm-async"],
        deps=["pluggy", "greenlet", "pytest"],
        install=["dorm-core", "dorm-async"],
    )
    assert venv.script_lines(SCRIPT, tmp_path) == [
        "1 ['ann', 'bob']",
        "1 20 4",
        "BackgroundTasksError True BackgroundTasks(durable=True) hands each task to the "
        "queue of dorm-tasks, and the dorm-tasks distribution is not installed",
        "[('async', 'dorm-async')]",
        "no tasks",
    ]
    # The plugin's own tests, SQLite half, with only dorm-core and dorm-async installed.
    for path in ("test_sync_dataloader.py", "test_dataloader.py", "test_background.py"):
        venv.run_sqlite_tests(f"tests/async/{path}")
    for module in ("sync_dataloader", "dataloader", "background"):
        venv.assert_installed(f"dorm.contrib.{module}", tmp_path)
