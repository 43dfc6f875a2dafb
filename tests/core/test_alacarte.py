"""À la carte installs: dorm-core plus one plugin, as wheels and as editable installs.

Each case builds a fresh virtual environment without network access: the only things
installed into it are the wheels built here and dorm-core's dependencies (pluggy,
greenlet), copied from this environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "tests" / "fixtures" / "dorm-hello"

pytestmark = pytest.mark.slow

SAVE_SCRIPT = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s: %(message)s")
from dorm import signals

class Note:
    pass

signals.post_save.send(sender=Note, instance=Note(), created=True, raw=False,
                       using="default", update_fields=None)
from dorm.contrib.hello.plugin import SEEN
print(SEEN)
"""


class Venv:
    """A throwaway virtual environment driven from the outside."""

    def __init__(self, root: Path) -> None:
        self.root = root
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
        self.python = root / "bin" / "python"
        self.purelib = Path(
            self.run_py("import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
        )
        self._copy_installed("pluggy")
        self._copy_installed("greenlet")

    def _copy_installed(self, name: str) -> None:
        dist = metadata.distribution(name)
        for file in dist.files or []:
            if str(file).startswith(".."):  # scripts outside site-packages
                continue
            target = self.purelib / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(dist.locate_file(file), target)

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env["PATH"] = f"{self.root / 'bin'}:{env.get('PATH', '')}"
        return env

    def pip(self, *args: str) -> None:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(self.python),
                "--disable-pip-version-check",
                *args,
            ],
            check=True,
            capture_output=True,
            text=True,
            env=self._env(),
        )

    def run(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(cmd), capture_output=True, text=True, env=self._env(), cwd=self.root
        )

    def run_py(self, code: str) -> str:
        result = self.run(str(self.python), "-c", code)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def dorm(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.root / "bin" / "dorm"), *args)


def _check_core_plus_hello(venv: Venv) -> None:
    # the plugin imports under dorm.contrib; an absent plugin does not
    assert venv.run_py("import dorm.contrib.hello as h; print(h.__version__)") == "1.0.0\n"
    missing = venv.run(str(venv.python), "-c", "import dorm.contrib.temporal")
    assert missing.returncode == 1 and "ModuleNotFoundError" in missing.stderr

    help_text = venv.dorm("--help")
    assert help_text.returncode == 0, help_text.stderr
    assert "hello" in help_text.stdout and "plugins" in help_text.stdout
    assert "worker" not in help_text.stdout  # no commands from plugins that are not installed

    hello = venv.dorm("hello", "--name", "Ada")
    assert (hello.returncode, hello.stdout) == (0, "hello, Ada (0 saves seen)\n")

    listing = venv.dorm("plugins").stdout.splitlines()
    assert "dorm-hello 1.0.0  (entry point hello = dorm.contrib.hello.plugin)" in listing
    assert (
        listing[
            listing.index("dorm-hello 1.0.0  (entry point hello = dorm.contrib.hello.plugin)") + 1
        ]
        == "    hooks: dorm_post_save, dorm_register_commands"
    )

    saved = venv.run(str(venv.python), "-c", SAVE_SCRIPT)
    assert saved.returncode == 0, saved.stderr
    assert saved.stdout.splitlines() == ["dorm.contrib.hello: saw a new Note", "[('Note', True)]"]


def test_wheels_install_a_la_carte(tmp_path: Path, wheels: dict[str, Path]) -> None:
    venv = Venv(tmp_path / "venv")
    wheel_dir = wheels["dorm-core"].parent
    venv.pip("install", "--no-index", "--find-links", str(wheel_dir), "dorm-core", "dorm-hello")
    assert venv.run_py("import dorm; print(dorm.__file__)").startswith(str(venv.purelib))
    _check_core_plus_hello(venv)

    # Uninstalling the plugin must not take dorm/__init__.py with it.
    venv.pip("uninstall", "--yes", "dorm-hello")
    assert venv.run_py("import dorm; print(dorm.__version__)") == "4.3.0\n"
    after = venv.dorm("--help")
    assert after.returncode == 0 and "hello" not in after.stdout


def test_editable_installs_from_separate_folders(
    tmp_path: Path, wheel_builder: Callable[..., Path]
) -> None:
    out = tmp_path / "editable-wheels"
    core = wheel_builder(REPO / "packages" / "dorm-core", out, editable=True)
    hello = wheel_builder(HELLO, out, editable=True)
    venv = Venv(tmp_path / "venv")
    venv.pip("install", "--no-index", "--find-links", str(out), str(core), str(hello))
    dorm_file = venv.run_py("import dorm; print(dorm.__file__)").strip()
    hello_file = venv.run_py("import dorm.contrib.hello as h; print(h.__file__)").strip()
    assert dorm_file == str(REPO / "packages/dorm-core/src/dorm/__init__.py")
    assert hello_file == str(HELLO / "src/dorm/contrib/hello/__init__.py")
    _check_core_plus_hello(venv)
