"""dorm-fields works in a virtual environment that holds only dorm-core and dorm-fields.

The wheels are built here; their dependencies are copied from this environment, so the
test needs no network.
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
from dorm.contrib.extra_fields import ColorField, Money, MoneyField, SemverField, autoslug
from dorm.exceptions import ValidationError
from dorm.migrations.schema import SchemaEditor

class Release(dorm.Model):
    name = dorm.CharField(max_length=40)
    slug = dorm.SlugField(default=autoslug("name"))
    version = SemverField()
    price = MoneyField(currency="EUR")
    color = ColorField(default="#000000")

    class Meta:
        app_label = "demo"

dorm.configure(DATABASES={"default": {"ENGINE": "sqlite",
                                      "NAME": tempfile.mkdtemp() + "/db.sqlite3"}})
with SchemaEditor() as editor:
    editor.create_model(Release)
for version in ("1.0.0", "1.0.0-rc.1", "0.9.0"):
    Release.objects.create(name="Spring", version=version, price="9.5", color="#abcdef")
rows = sorted(Release.objects.all(), key=lambda r: r.version)
print([(r.slug, str(r.version), str(r.price), r.color) for r in rows])
try:
    rows[0].price = Money(1, "USD")
except ValidationError as exc:
    print(str(exc).split(":")[0])
try:
    import dorm.contrib.tasks
except ImportError:
    print("no tasks plugin")
"""


def test_core_and_fields_alone_in_a_fresh_venv(tmp_path: Path, isolated_venv: Any) -> None:
    venv = isolated_venv(
        ["dorm-core", "dorm-fields"],
        deps=["pluggy", "greenlet", "pycountry", "iso4217", "phonenumbers", "jsonschema"],
        install=["dorm-core", "dorm-fields[jsonschema]"],
    )
    assert venv.script_lines(SCRIPT, tmp_path) == [
        "[('spring-3', '0.9.0', '9.50 EUR', '#ABCDEF'), ('spring-2', '1.0.0-rc.1', "
        "'9.50 EUR', '#ABCDEF'), ('spring', '1.0.0', '9.50 EUR', '#ABCDEF')]",
        "currency mismatch",
        "no tasks plugin",
    ]
    venv.assert_installed("dorm.contrib.extra_fields", tmp_path)
