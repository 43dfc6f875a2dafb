"""dorm-saga works in a virtual environment that holds only dorm-core and dorm-saga.

The wheels are built here; their dependencies (and pytest, to run the plugin's own tests
there) are copied from this environment, so the test needs no network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

SCRIPT = """
import tempfile
import dorm
from dorm.contrib.concurrency import named_lock, with_optimistic_lock
from dorm.contrib.inbox import InboxRecord, idempotent
from dorm.contrib.saga import Saga, Step
from dorm.migrations.schema import SchemaEditor

class Inbox(InboxRecord):
    class Meta:
        app_label = "demo"

class Account(dorm.Model):
    balance = dorm.IntegerField(default=0)
    version = dorm.IntegerField(default=0)
    class Meta:
        app_label = "demo"

dorm.configure(DATABASES={"default": {"ENGINE": "sqlite",
                                      "NAME": tempfile.mkdtemp() + "/db.sqlite3"}})
with SchemaEditor() as editor:
    editor.create_model(Inbox)
    editor.create_model(Account)
done = []

def fail(ctx):
    raise ValueError("x")

run = Saga(steps=[Step("a", lambda c: done.append("a"), lambda c: done.append("undo a")),
                  Step("b", fail)], name="iso", durable=True).run()
print(run.ok, run.compensated, done)

@idempotent(Inbox)
def handle(message_id):
    return "ran"

print(handle("m"), handle("m"))
account = Account.objects.create()
Account.objects.update(balance=5)
with named_lock("x"):
    account = Account.objects.get()
    account.balance += 1
    with_optimistic_lock(account)
print(Account.objects.get().balance, Account.objects.get().version)
for name in ("tasks", "temporal", "extra_fields"):
    try:
        __import__("dorm.contrib." + name)
    except ImportError:
        print("no", name)
"""


def test_core_and_saga_alone_in_a_fresh_venv(tmp_path: Path, isolated_venv: Any) -> None:
    venv = isolated_venv(
        ["dorm-core", "dorm-saga"],
        deps=["pluggy", "greenlet", "pytest"],
        install=["dorm-core", "dorm-saga"],
    )
    assert venv.script_lines(SCRIPT, tmp_path) == [
        "False ['a'] ['a', 'undo a']",
        "ran None",
        "6 2",
        "no tasks",
        "no temporal",
        "no extra_fields",
    ]
    helptext = venv.dorm_help(tmp_path)
    for command in ("saga", "two-phase", "inbox"):
        assert command in helptext
    assert "worker" not in helptext and "temporal" not in helptext
    # The plugin's own tests, SQLite half, with only dorm-core and dorm-saga installed.
    venv.run_sqlite_tests("tests/saga/test_saga.py")
    venv.run_sqlite_tests("tests/saga/test_inbox.py")
    for module in ("saga", "two_phase", "inbox", "concurrency"):
        venv.assert_installed(f"dorm.contrib.{module}", tmp_path)
