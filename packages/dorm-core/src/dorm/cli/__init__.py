"""The ``dorm`` command line: ``main(argv) -> int`` and the ``Command`` base class."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dorm.plugins import lazy_exports

if TYPE_CHECKING:
    from dorm.cli.app import main, run
    from dorm.cli.command import Command

# Loaded on first use: the plugin manager registers core's commands from dorm.cli.builtin,
# and a process that never runs the CLI should not import argparse for it.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {"Command": "dorm.cli.command", "main": "dorm.cli.app", "run": "dorm.cli.app"},
)

__all__ = ["Command", "main", "run"]
