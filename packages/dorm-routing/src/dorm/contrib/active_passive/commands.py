"""``dorm routing status``: each alias's role, replay lag and last probe."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from dorm.cli.migration_commands import SettingsCommand
from dorm.exceptions import CommandError

__all__ = ["COMMANDS", "RoutingCommand", "configured_routers"]


def configured_routers() -> list[Any]:
    """The ActivePassiveRouter instances of ``DATABASE_ROUTERS`` (dotted paths imported)."""
    from dorm.conf import settings
    from dorm.contrib.active_passive.router import ActivePassiveRouter

    found = []
    for entry in settings.DATABASE_ROUTERS:
        if isinstance(entry, str):
            module, _, name = entry.rpartition(".")
            try:
                entry = getattr(importlib.import_module(module), name)()
            except (ImportError, AttributeError, ValueError, TypeError) as exc:
                raise CommandError(f"DATABASE_ROUTERS: cannot import {entry!r}: {exc}") from exc
        if isinstance(entry, ActivePassiveRouter):
            found.append(entry)
    return found


class RoutingCommand(SettingsCommand):
    name = "routing"
    help = "active/passive routing: probe every alias, print its role, lag and last probe"
    # The aliases come from the routers, not from --database.
    needs_database = False

    def add_command_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="<action>", required=True)
        sub.add_parser("status", help="probe the aliases of each ActivePassiveRouter now")

    def run(self, args: argparse.Namespace) -> int | None:
        from dorm.contrib.active_passive.probe import describe

        routers = configured_routers()
        if not routers:
            raise CommandError(
                "no ActivePassiveRouter in DATABASE_ROUTERS: add one, e.g. DATABASE_ROUTERS = "
                "[ActivePassiveRouter(aliases=['node_a', 'node_b'])]"
            )
        failed = False
        for router in routers:
            statuses = router.refresh()
            primaries = [s.alias for s in statuses if s.role == "primary" and not s.stale]
            print(f"{router!r}: primary {', '.join(primaries) or 'NONE'}")
            for status in statuses:
                print("  " + describe(status))
            failed = failed or not primaries
        return 1 if failed else 0


COMMANDS: list[type[SettingsCommand]] = [RoutingCommand]
