"""Core's own hook implementations: dorm-core registers through the same hooks as plugins."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dorm.plugins import hookimpl

if TYPE_CHECKING:
    from dorm.cli.command import Command


@hookimpl
def dorm_register_commands() -> list[type[Command]]:
    from dorm.cli.plugin_list import PluginsCommand

    return [PluginsCommand]
