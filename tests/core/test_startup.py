"""Start-up stays small with every distribution installed: a plugin costs nothing until used.

Each check runs in a fresh interpreter, so that what the test process imported earlier
cannot hide an import.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from dorm import plugins

DORM = Path(sys.executable).with_name("dorm")
# Libraries of plugin commands that no command may import before it runs.
HEAVY = (
    *("msgpack", "msgspec", "jsonschema", "numpy", "prometheus_client", "opentelemetry"),
    *("croniter", "phonenumbers", "iso4217", "psycopg", "asyncpg", "greenlet", "asyncio"),
)

# Modules a plugin may import when its entry point loads, besides the entry-point module
# and its packages: exception classes, and names a package binds eagerly because a
# submodule of the same name would otherwise shadow them.
_EAGER = {"dorm.contrib.tasks.task", "dorm.contrib.temporal.context"}


def _python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _dorm(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "300"}  # no wrapped help lines
    return subprocess.run([str(DORM), *args], capture_output=True, text=True, cwd=cwd, env=env)


def test_dorm_help_lists_every_command_with_its_help_line() -> None:
    result = _dorm("--help")
    assert result.returncode == 0, result.stderr
    listing = " ".join(result.stdout.partition("\ncommands:\n")[2].split())
    commands = plugins.collect_commands()
    owners = {owner for owner, _cls in commands.values()}
    assert {"tasks", "temporal", "serializers", "security", "saga"} <= owners
    for name, (_owner, cls) in commands.items():
        assert f" {name} {' '.join(cls.help.split())}" in f" {listing}", name
    assert re.findall(r"^    (\S+)", result.stdout, re.M) == sorted(commands)


def test_dorm_help_reads_no_metadata_library_and_no_command_library() -> None:
    code = (
        "import sys, io, contextlib\n"
        "from dorm.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['--help']) == 0\n"
        "print(*sorted(sys.modules))\n"
    )
    loaded = set(_python(code).split())
    assert "dorm.contrib.tasks.commands" in loaded  # the commands were collected
    unwanted = {"importlib.metadata", "email", "pathlib", *HEAVY}
    assert loaded & unwanted == set()


def test_every_command_help_imports_no_command_library() -> None:
    code = (
        "import sys, io, contextlib\n"
        "from dorm import plugins\n"
        "from dorm.cli import main\n"
        "for name in sorted(plugins.collect_commands()):\n"
        "    with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "        assert main([name, '--help']) == 0, name\n"
        "    assert out.getvalue().startswith(f'usage: dorm {name} '), name\n"
        "print(*sorted(m.split('.')[0] for m in sys.modules))\n"
    )
    assert set(_python(code).split()) & set(HEAVY) == set()


def test_a_plugin_command_and_its_help_still_run(tmp_path: Path) -> None:
    (tmp_path / "settings.py").write_text(
        f"DATABASES = {{'default': {{'ENGINE': 'sqlite', 'NAME': {str(tmp_path / 'x.db')!r}}}}}\n"
    )
    result = _dorm("temporal", "status", cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        "no @temporal-tracked models\n",
        "",
    )
    result = _dorm("temporal", "prune", "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: dorm temporal prune [-h] --older-than AGE")
    result = _dorm("worker", "--max-tasks", "x")
    assert result.returncode == 2
    assert result.stderr.startswith("dorm worker: argument --max-tasks: invalid int value: 'x'")


def test_loading_the_plugins_imports_only_their_entry_points() -> None:
    code = (
        "import sys\n"
        "from dorm import plugins\n"
        "plugins.get_plugin_manager()\n"
        "print(*sorted(m for m in sys.modules if m.startswith('dorm.contrib.')))\n"
        "print(*sorted(i.entry_point.split(' = ')[1] for i in plugins.plugin_infos() "
        "if i.entry_point))\n"
        "print(*sorted(m for m in ('argparse', 'dorm.cli.app') if m in sys.modules) or '-')\n"
    )
    loaded_line, entry_line, cli_line = _python(code).splitlines()
    assert cli_line == "-"  # core's commands register without the CLI's parser
    loaded, entry_points = set(loaded_line.split()), set(entry_line.split())
    assert len(entry_points) >= 10  # every workspace distribution has one
    allowed = set(_EAGER)
    for module in entry_points:
        parts = module.split(".")
        allowed.update(".".join(parts[:n]) for n in range(3, len(parts) + 1))
    extra = {m for m in loaded - allowed if not m.endswith(".exceptions")}
    assert extra == set(), f"imported while the plugins load: {sorted(extra)}"
    assert entry_points <= loaded


def test_lazy_plugin_packages_still_export_their_names() -> None:
    import dorm.contrib.tasks.queue  # binds the submodule 'task' on the package
    import dorm.contrib.temporal.tracking  # binds the submodule 'context' on the package
    from dorm.contrib import sync_dataloader, tasks, temporal

    assert callable(tasks.task) and tasks.task.__module__ == "dorm.contrib.tasks.task"
    assert tasks.TaskQueue is dorm.contrib.tasks.queue.TaskQueue
    assert tasks.dead_letters.__module__ == "dorm.contrib.tasks.retry"
    assert callable(temporal.context) and temporal.context.__module__.endswith(".context")
    assert temporal.temporal is dorm.contrib.temporal.tracking.temporal
    assert temporal.temporal.context is temporal.context
    assert sync_dataloader.SyncDataLoader.__name__ == "SyncDataLoader"
    for package in (tasks, temporal, sync_dataloader):
        assert set(package.__all__) <= set(dir(package))
        for name in package.__all__:
            assert getattr(package, name) is not None


def test_the_script_skips_the_exit_collection_only_when_no_command_ran() -> None:
    def run(*args: str) -> tuple[int, str, str]:
        code = (
            "import atexit, gc, sys\n"
            "frozen = lambda: print('frozen:', gc.get_freeze_count() > 0, file=sys.stderr)\n"
            "atexit.register(frozen)\n"
            f"sys.argv = ['dorm', *{list(args)!r}]\n"
            "from dorm.cli import run\n"
            "run()\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        return result.returncode, result.stdout, result.stderr

    code, out, err = run("--help")
    assert (code, err) == (0, "frozen: True\n") and out.startswith("usage: dorm [-h]")
    code, out, err = run("nope")
    assert code == 2 and err.endswith("(see 'dorm --help')\nfrozen: True\n")
    code, out, err = run("plugins")  # a command ran: the usual exit
    assert (code, err) == (0, "frozen: False\n") and out.startswith("dorm-core ")


def test_import_dorm_cli_alone_imports_no_parser_and_keeps_its_attributes() -> None:
    code = (
        "import sys, dorm.cli\n"
        "print('argparse' in sys.modules)\n"
        "print(dorm.cli.command.parse_age('2d'), dorm.cli.app.main is dorm.cli.main)\n"
        "print(dorm.cli.Command.__module__, dorm.cli.run.__module__)\n"
    )
    assert _python(code).splitlines() == [
        "False",
        "2 days, 0:00:00 True",
        "dorm.cli.command dorm.cli.app",
    ]
