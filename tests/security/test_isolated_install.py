"""dorm-security works in a virtual environment that holds only dorm-core and dorm-security.

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
from dorm.contrib.anonymizer import anonymize_model
from dorm.contrib.auth.tokens import ShortLivedToken, TokenStore
from dorm.contrib.permissions import GroupMembership, PermissionGrant, grant, permitted
from dorm.contrib.rate_limit import TokenBucket
from dorm.migrations.schema import SchemaEditor

class Person(dorm.Model):
    email = dorm.EmailField(unique=True)
    class Meta:
        app_label = "demo"

dorm.configure(DATABASES={"default": {"ENGINE": "sqlite",
                                      "NAME": tempfile.mkdtemp() + "/db.sqlite3"}})
with SchemaEditor() as editor:
    for model in (Person, ShortLivedToken, PermissionGrant, GroupMembership):
        editor.create_model(model)
ann = Person.objects.create(email="ann@corp.example")
print(anonymize_model(Person, {"email": "random_email"}, seed="s"),
      Person.objects.get().email.endswith("@example.invalid"))
store = TokenStore()
new, old = store.rotate(store.issue("ann"))
print(store.verify(new), store.verify(old))
grant(ann, "person.view", obj=ann)
print(permitted(ann, "person.view", Person.objects.all()).count())
bucket = TokenBucket(1, 2)
print([bucket.take("k").allowed for _ in range(3)])
for name in ("tasks", "temporal", "extra_fields"):
    try:
        __import__("dorm.contrib." + name)
    except ImportError:
        print("no", name)
"""


def test_core_and_security_alone_in_a_fresh_venv(tmp_path: Path, isolated_venv: Any) -> None:
    venv = isolated_venv(
        ["dorm-core", "dorm-security"],
        deps=["pluggy", "greenlet", "pytest"],
        install=["dorm-core", "dorm-security"],
    )
    assert venv.script_lines(SCRIPT, tmp_path) == [
        "1 True",
        "ann ann",
        "1",
        "[True, True, False]",
        "no tasks",
        "no temporal",
        "no extra_fields",
    ]
    helptext = venv.dorm_help(tmp_path)
    assert "anonymize" in helptext and "worker" not in helptext
    # The plugin's own tests, SQLite half, with only dorm-core and dorm-security installed.
    venv.run_sqlite_tests("tests/security/test_anonymizer.py")
    venv.run_sqlite_tests("tests/security/test_permissions.py")
    venv.assert_installed("dorm.contrib.anonymizer", tmp_path)
    venv.assert_installed("dorm.contrib.auth.tokens", tmp_path)
