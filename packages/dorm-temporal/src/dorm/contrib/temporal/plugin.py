"""The hook implementations of dorm-temporal: triggers with the tables, and the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dorm.plugins import hookimpl

if TYPE_CHECKING:
    from dorm.cli.command import Command


@hookimpl
def dorm_schema_model_created(schema_editor: Any, model: type) -> None:
    from dorm.contrib.temporal.schema import model_created

    model_created(schema_editor, model)


@hookimpl
def dorm_schema_model_altered(schema_editor: Any, model: type) -> None:
    from dorm.contrib.temporal.schema import model_altered

    model_altered(schema_editor, model)


@hookimpl
def dorm_schema_model_deleted(schema_editor: Any, model: type) -> None:
    from dorm.contrib.temporal.schema import model_deleted

    model_deleted(schema_editor, model)


@hookimpl
def dorm_register_commands() -> list[type[Command]]:
    # Imported here: loading the plugin must not import the CLI machinery.
    from dorm.contrib.temporal.commands import COMMANDS

    return list(COMMANDS)
