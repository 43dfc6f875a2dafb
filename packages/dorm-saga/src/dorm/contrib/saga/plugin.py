"""The hook implementations of dorm-saga: optimistic-lock models, and the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dorm.plugins import hookimpl

if TYPE_CHECKING:
    from dorm.cli.command import Command


@hookimpl
def dorm_class_prepared(sender: type) -> None:
    # Once per model class: a versioned model's QuerySet.update() bumps its version.
    from dorm.contrib.concurrency.optimistic import prepare_model

    prepare_model(sender)


@hookimpl
def dorm_register_commands() -> list[type[Command]]:
    # Imported here: loading the plugin must not import the CLI machinery.
    from dorm.contrib.saga.commands import COMMANDS

    return list(COMMANDS)
