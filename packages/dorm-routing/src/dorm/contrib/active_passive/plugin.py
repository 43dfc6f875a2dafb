"""The hook implementations of dorm-routing: the ``dorm routing`` command."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dorm.plugins import hookimpl

if TYPE_CHECKING:
    from dorm.cli.command import Command


@hookimpl
def dorm_register_commands() -> list[type[Command]]:
    # Imported here: loading the plugin must not import the CLI machinery.
    from dorm.contrib.active_passive.commands import COMMANDS

    return list(COMMANDS)
