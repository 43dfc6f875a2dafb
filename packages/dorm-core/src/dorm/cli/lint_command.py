"""``dorm lint-migrations``: report risky migration operations (codes DORM-M001..M006)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from dorm.cli.command import Command
from dorm.exceptions import CommandError, DormError

__all__ = ["COMMANDS", "LintMigrationsCommand"]


class LintMigrationsCommand(Command):
    """Lint migration files; exit 1 when there are findings, 0 when clean, 2 on bad usage."""

    name = "lint-migrations"
    help = "report risky migration operations (DORM-M001..M006); exit 1 on findings"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "apps", nargs="*", metavar="app", help="app labels to lint (default: every app)"
        )
        parser.add_argument(
            "--format", choices=("text", "json"), default="text", help="output format"
        )
        parser.add_argument("--settings", metavar="MODULE", help="settings module to use")
        parser.add_argument(
            "--database",
            metavar="ALIAS",
            help="lint for this database's vendor (M002 is reported only for PostgreSQL "
            "when given; without it M002 is always reported)",
        )

    def handle(self, args: argparse.Namespace) -> int | None:
        from dorm.apps import apps as registry
        from dorm.conf import settings
        from dorm.migrations.linter import lint_migrations
        from dorm.migrations.loader import MigrationLoader

        if args.settings:
            os.environ["DORM_SETTINGS"] = args.settings
            settings._reset()
        try:
            databases = settings.DATABASES
            vendor = None
            if args.database is not None:
                if args.database not in databases:
                    known = ", ".join(sorted(databases)) or "none"
                    print(
                        f"dorm lint-migrations: error: unknown database alias "
                        f"{args.database!r} (DATABASES has: {known})",
                        file=sys.stderr,
                    )
                    return 2
                vendor = str(databases[args.database]["ENGINE"])
            loader = MigrationLoader()
        except DormError as exc:
            raise CommandError(str(exc)) from exc
        labels = set(loader.migrated_apps) | loader.unmigrated_apps
        unknown = [a for a in args.apps if a not in labels]
        if unknown:
            print(
                f"dorm lint-migrations: error: unknown app {', '.join(map(repr, unknown))} "
                f"(installed: {', '.join(sorted(labels)) or 'none'})",
                file=sys.stderr,
            )
            return 2
        wanted = set(args.apps) or labels
        migrations = [m for key, m in sorted(loader.graph.nodes.items()) if key[0] in wanted]
        findings = lint_migrations(migrations, graph=loader.graph, registry=registry, vendor=vendor)
        if args.format == "json":
            print(json.dumps([f.as_dict() for f in findings], indent=2))
        elif findings:
            for finding in findings:
                print(finding.as_text())
        else:
            print(f"No findings in {len(migrations)} migration(s).")
        return 1 if findings else 0


COMMANDS: list[type[Command]] = [LintMigrationsCommand]
