"""The ``dorm`` command line: ``main(argv) -> int`` and the ``Command`` base class."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dorm.plugins import lazy_exports

if TYPE_CHECKING:
    from dorm.cli.app import main, run
    from dorm.cli.command import Command

# Loaded on first use: the plugin manager registers core's commands from dorm.cli.builtin,
# and a process that never runs the CLI should not import argparse for it.
_exported, __dir__ = lazy_exports(
    __name__,
    {"Command": "dorm.cli.command", "main": "dorm.cli.app", "run": "dorm.cli.app"},
)


def __getattr__(name: str) -> Any:
    if name in ("app", "command"):
        # Before 4.3 ``import dorm.cli`` imported these submodules: still found this way.
        return importlib.import_module(f"{__name__}.{name}")
    return _exported(name)


__all__ = ["Command", "main", "run"]
