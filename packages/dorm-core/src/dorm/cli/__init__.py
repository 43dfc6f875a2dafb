"""The ``dorm`` command line: ``main(argv) -> int`` and the ``Command`` base class."""

from __future__ import annotations

from dorm.cli.app import main, run
from dorm.cli.command import Command

__all__ = ["Command", "main", "run"]
