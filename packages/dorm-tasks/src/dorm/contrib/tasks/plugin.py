"""The hook implementations of dorm-tasks: the ``worker`` and ``tasks`` CLI commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dorm.plugins import hookimpl

if TYPE_CHECKING:
    from dorm.cli.command import Command


@hookimpl
def dorm_register_commands() -> list[type[Command]]:
    # Imported here: loading the plugin must not import the CLI machinery.
    from dorm.contrib.tasks.commands import COMMANDS

    return list(COMMANDS)
