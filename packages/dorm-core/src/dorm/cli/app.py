"""The ``dorm`` console script: builds the parser from the registered commands and runs one."""

from __future__ import annotations

import argparse
import gc
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from dorm import __version__, plugins
from dorm.exceptions import CommandError, PluginError

__all__ = ["main", "run"]

_INVALID_CHOICE = re.compile(r"argument <command>: invalid choice: '([^']*)' \(choose from (.*)\)")


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become one line and exit code 2 in ``main``."""

    def error(self, message: str) -> NoReturn:
        match = _INVALID_CHOICE.match(message)
        if match:
            known = match.group(2).replace("'", "")
            message = f"unknown command {match.group(1)!r} (known commands: {known})"
        raise _UsageError(f"{self.prog}: {message}")


def _build_parser(selected: str | None) -> _Parser:
    """The ``dorm`` parser: every command listed with its help line, and the options of
    ``selected`` only (``dorm --help`` and one command need no other command's options)."""
    parser = _Parser(
        prog="dorm",
        description="dorm: a small, fast Django-style ORM. Commands come from dorm-core "
        "and the installed plugins ('dorm plugins' lists them).",
    )
    parser.add_argument("--version", action="version", version=f"dorm {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>", title="commands")
    for name, (_owner, cls) in sorted(plugins.collect_commands().items()):
        sub = subparsers.add_parser(name, help=cls.help, description=cls.help)
        if name == selected:
            command = cls()
            command.add_arguments(sub)
            sub.set_defaults(_command=command)
    return parser


def _command_name(args: Sequence[str]) -> str | None:
    """The command ``args`` name, as the parser reads it: the top-level options take no
    value, so it is the first argument that is not an option. (argparse also reads ``-``
    and negative numbers as positionals; either is an unknown command, an error whatever
    is selected here.)"""
    for arg in args:
        if not arg.startswith("-"):
            return arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dorm`` CLI with ``argv`` (default ``sys.argv[1:]``) and return the exit code.

    0 success, 1 a command or plugin failure (one line on stderr), 2 a usage error.
    """
    return _main(argv)[0]


def _main(argv: Sequence[str] | None) -> tuple[int, bool]:
    """``main``'s exit code, and whether a command ran (help, version and errors run none)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = _build_parser(_command_name(args))
    except PluginError as exc:
        print(f"dorm: error: {exc}", file=sys.stderr)
        return 1, False
    try:
        namespace = parser.parse_args(args)
    except _UsageError as exc:
        print(f"{exc} (see 'dorm --help')", file=sys.stderr)
        return 2, False
    except SystemExit as exc:  # --help and --version print, then exit
        return (exc.code if isinstance(exc.code, int) else 0), False
    command = getattr(namespace, "_command", None)
    if command is None:
        parser.print_help()
        return 0, False
    try:
        code = command.handle(namespace)
    except CommandError as exc:
        print(f"dorm {namespace.command}: error: {exc}", file=sys.stderr)
        return 1, True
    return (0 if code is None else int(code)), True


def run() -> NoReturn:
    """Console-script entry point: ``sys.exit(main())``."""
    code, ran = _main(None)
    if not ran:
        # Nothing but imports and a parser: let the interpreter skip its collection over
        # them at exit (about 8 ms, a tenth of ``dorm --help``). After a command, its
        # objects may have finalizers to run, and the exit is the usual one.
        gc.freeze()
    sys.exit(code)
