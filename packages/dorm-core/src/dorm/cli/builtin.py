"""Core's own hook implementations: dorm-core registers through the same hooks as plugins."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dorm.plugins import hookimpl

if TYPE_CHECKING:
    from dorm.cli.command import Command


@hookimpl
def dorm_register_commands() -> list[type[Command]]:
    # Imported here, not at module level: `import dorm` must not pay for the CLI.
    from dorm.cli import init_command, lint_command, migration_commands
    from dorm.cli.plugin_list import PluginsCommand

    return [
        PluginsCommand,
        *migration_commands.COMMANDS,
        *lint_command.COMMANDS,
        *init_command.COMMANDS,
    ]
