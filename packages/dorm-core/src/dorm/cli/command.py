"""The base class of every ``dorm`` subcommand, core's and plugins' alike."""

from __future__ import annotations

import argparse
from typing import ClassVar

__all__ = ["Command"]


class Command:
    """A ``dorm <name>`` subcommand; register it through ``dorm_register_commands``.

    Subclasses set ``name`` (lower case, dashes allowed) and ``help`` (one line), add
    their options in ``add_arguments`` and do the work in ``handle``. ``handle`` returns
    the exit code (None means 0); raise ``dorm.exceptions.CommandError`` for a failure
    the user should read: the CLI prints its message on one line and exits with 1.
    """

    name: ClassVar[str] = ""
    help: ClassVar[str] = ""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add this command's options and positional arguments to ``parser``."""

    def handle(self, args: argparse.Namespace) -> int | None:
        """Run the command with the parsed ``args``."""
        raise NotImplementedError(f"{type(self).__qualname__}.handle() is not implemented")
