"""dorm-fields works in a virtual environment that holds only dorm-core and dorm-fields.

The wheels are built here; their dependencies are copied from this environment, so the
test needs no network.
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


def test_core_and_fields_alone_in_a_fresh_venv(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    for pkg in ("dorm-core", "dorm-fields"):
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
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    purelib = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout.strip()
    )
    deps = ["pluggy", "greenlet", "pycountry", "iso4217", "phonenumbers", "jsonschema"]
    for dist in _closure(deps):
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
            "dorm-fields[jsonschema]",
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
        "[('spring-3', '0.9.0', '9.50 EUR', '#ABCDEF'), ('spring-2', '1.0.0-rc.1', "
        "'9.50 EUR', '#ABCDEF'), ('spring', '1.0.0', '9.50 EUR', '#ABCDEF')]",
        "currency mismatch",
        "no tasks plugin",
    ]
    site = subprocess.run(
        [str(python), "-c", "import dorm.contrib.extra_fields as f; print(f.__file__)"],
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    assert site.startswith(str(purelib)), site
