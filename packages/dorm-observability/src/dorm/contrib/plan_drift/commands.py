"""``dorm plan-drift check``: explain every recorded query again; exit 1 when a plan drifted."""

from __future__ import annotations

import argparse
from typing import Any

from dorm.cli.migration_commands import SettingsCommand
from dorm.exceptions import CommandError

__all__ = ["COMMANDS", "PlanDriftCommand"]


class PlanDriftCommand(SettingsCommand):
    name = "plan-drift"
    help = "compare recorded query plans with the database's current plans (for CI)"

    def add_command_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="<action>", required=True)
        check = sub.add_parser(
            "check", help="explain each recorded query again; exit 1 if a plan drifted"
        )
        check.add_argument(
            "--tag", action="append", dest="tags", metavar="TAG", help="only this tag (repeatable)"
        )
        check.add_argument(
            "--path", metavar="FILE", help="the baselines file (default: settings.PLAN_DRIFT_PATH)"
        )
        show = sub.add_parser("list", help="list the recorded tags and their last comparison")
        show.add_argument("--path", metavar="FILE")

    def run(self, args: argparse.Namespace) -> int | None:
        from dorm.conf import settings
        from dorm.contrib.plan_drift import drift

        if args.path:
            settings.PLAN_DRIFT_PATH = args.path
        known = drift.tags()
        if args.action == "list":
            last: dict[str, Any] = {}
            for result in drift.history():
                last[result.tag] = result
            for tag in known:
                state = last.get(tag)
                status = (
                    "never compared" if state is None else ("DRIFTED" if state.drifted else "ok")
                )
                print(f"{tag}  {status}")
            print(f"({len(known)} tag(s) in {drift.store_path()})")
            return 0
        selected = args.tags or known
        unknown = [t for t in selected if t not in known]
        if unknown:
            raise CommandError(
                f"plan-drift check: no baseline for tag(s) {', '.join(map(repr, unknown))} in "
                f"{drift.store_path()}; known: {', '.join(known) or 'none'}"
            )
        if not selected:
            print(f"no baselines recorded in {drift.store_path()}")
            return 0
        using = self.alias if args.database != "default" else None
        drifted = 0
        for tag in selected:
            result = drift.compare(tag, using=using)
            if result.drifted:
                drifted += 1
                print(f"DRIFTED  {tag}")
                for line in result.diff():
                    print(f"    {line}")
            else:
                print(f"ok       {tag}")
        print(f"{drifted} of {len(selected)} plan(s) drifted")
        return 1 if drifted else 0


COMMANDS: list[type[SettingsCommand]] = [PlanDriftCommand]
