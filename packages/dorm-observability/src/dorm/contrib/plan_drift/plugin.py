"""The hook implementations of dorm-observability: the CLI and the pool warm-up gauge.

The other features (metrics, spans, the row cache, the N+1 detector, the slow transaction
watch) register their observer hooks when they are switched on, so that an installed but
unused plugin adds no work to any query.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dorm.plugins import hookimpl

if TYPE_CHECKING:
    from dorm.cli.command import Command


@hookimpl
def dorm_register_commands() -> list[type[Command]]:
    # Imported here: loading the plugin must not import the CLI machinery.
    from dorm.contrib.plan_drift.commands import COMMANDS

    return list(COMMANDS)


@hookimpl
def dorm_pool_warmed(alias: str, seconds: float) -> None:
    from dorm.contrib.prometheus.metrics import record_warmup

    record_warmup(alias, seconds)
