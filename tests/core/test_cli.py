"""The ``dorm`` CLI host: version, help, usage errors, command failures, ``dorm plugins``."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

import dorm
from dorm import plugins
from dorm.cli import Command, main
from dorm.exceptions import CommandError
from dorm.plugins import hookimpl

pytestmark = pytest.mark.usefixtures("fresh_manager")


class Explode(Command):
    name = "explode"
    help = "fail on purpose"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--times", type=int, required=True)

    def handle(self, args: argparse.Namespace) -> int:
        raise CommandError(f"cannot explode {args.times} times: the table 'x' is missing")


class Explosives:
    @hookimpl
    def dorm_register_commands(self) -> list[type[Command]]:
        return [Explode]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"dorm {dorm.__version__}\n"
    assert dorm.__version__ == "4.3.0"


def test_help_lists_core_and_plugin_commands(capsys: pytest.CaptureFixture[str]) -> None:
    plugins.register(Explosives(), name="explosives")
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "plugins" in out and "explode" in out and "fail on purpose" in out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert capsys.readouterr().out.startswith("usage: dorm")


def test_unknown_command_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrat"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    # the list holds every registered command; core's grow, so check its shape only
    assert captured.err.startswith("dorm: unknown command 'migrat' (known commands: ")
    assert captured.err.endswith(") (see 'dorm --help')\n")
    assert captured.err.count("\n") == 1 and "plugins" in captured.err


def test_bad_option_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    plugins.register(Explosives(), name="explosives")
    assert main(["explode", "--times", "many"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("dorm explode: argument --times: invalid int value: 'many'")
    assert main(["--frobnicate"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_command_error_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    plugins.register(Explosives(), name="explosives")
    assert main(["explode", "--times", "3"]) == 1
    assert capsys.readouterr().err == (
        "dorm explode: error: cannot explode 3 times: the table 'x' is missing\n"
    )


def test_command_class_without_a_name_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    class Nameless(Command):
        pass

    class Sloppy:
        @hookimpl
        def dorm_register_commands(self) -> list[type[Command]]:
            return [Nameless]

    plugins.register(Sloppy(), name="sloppy")
    assert main(["plugins"]) == 1
    assert "dorm plugin 'sloppy': command class" in capsys.readouterr().err


def test_plugins_lists_distributions_versions_and_hooks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    plugins.register(Explosives(), name="explosives")
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"dorm-core {dorm.__version__}  (built in)"
    core_hooks = [
        "dorm_backend_for",
        "dorm_register_commands",
        "dorm_register_functions",
        "dorm_register_lookups",
        "dorm_register_transforms",
    ]
    assert out[1] == f"    hooks: {', '.join(core_hooks)}"
    # Installed distributions (the workspace's plugins) come next, runtime plugins last.
    runtime = out.index("explosives  (registered at runtime)")
    assert out[runtime:] == [
        "explosives  (registered at runtime)",
        "    hooks: dorm_register_commands",
    ]
    installed = [line.split()[0] for line in out[2:runtime] if not line.startswith(" ")]
    workspace = {p.name for p in Path(__file__).resolve().parents[2].glob("packages/*")}
    assert set(installed) <= workspace
    assert main(["plugins", "--format", "json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["explosives"]["hooks"] == ["dorm_register_commands"]
    assert rows["explosives"]["distribution"] is None
    assert rows["dorm-core"]["distribution"] == "dorm-core"


def test_console_script_runs_as_a_process() -> None:
    script = Path(sys.executable).with_name("dorm")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, f"dorm {dorm.__version__}\n")
    result = subprocess.run([str(script), "nope"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("dorm: unknown command 'nope'")


def test_parse_age_for_older_than_options() -> None:
    import datetime

    from dorm.cli.command import parse_age

    assert parse_age("90d") == datetime.timedelta(days=90)
    assert parse_age(" 15 m ") == datetime.timedelta(minutes=15)
    assert parse_age("2w") == datetime.timedelta(weeks=2)
    with pytest.raises(ValueError, match="--keep '3 days': expected a number and a unit"):
        parse_age("3 days", option="--keep")
