"""The base class of every ``dorm`` subcommand, core's and plugins' alike."""

from __future__ import annotations

import argparse
import datetime
import re
from typing import ClassVar

__all__ = ["Command", "parse_age"]


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


_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str, option: str = "--older-than") -> datetime.timedelta:
    """``"90d"`` -> 90 days: a whole number and one unit (s, m, h, d, w), as the
    ``--older-than`` options of plugin commands take it.

    :raises ValueError: anything else; the message names ``option`` and the text.
    """
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if match is None:
        raise ValueError(
            f"{option} {text!r}: expected a number and a unit (s, m, h, d, w), e.g. 90d"
        )
    return datetime.timedelta(seconds=int(match.group(1)) * _AGE_UNITS[match.group(2)])
