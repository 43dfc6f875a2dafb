"""The ``dorm temporal prune`` and ``dorm temporal status`` commands."""

from __future__ import annotations

import argparse
import datetime
import sys
from typing import Any

from dorm.cli.command import parse_age
from dorm.cli.migration_commands import SettingsCommand
from dorm.exceptions import CommandError

__all__ = ["COMMANDS", "TemporalCommand", "parse_age", "prune"]


def prune(
    model: Any, older_than: datetime.timedelta, batch_size: int = 1000, using: str = "default"
) -> int:
    """Delete ``model``'s versions closed more than ``older_than`` ago, ``batch_size`` at
    a time (one transaction per batch); current versions are never touched. Returns the
    number of versions deleted."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    from dorm import transaction

    cutoff = datetime.datetime.now(datetime.UTC) - older_than
    versions = model._temporal_model.objects.using(using)
    total = 0
    while True:
        with transaction.atomic(using=using):
            ids = list(
                versions.filter(valid_to__isnull=False, valid_to__lt=cutoff)
                .order_by("history_id")
                .values_list("history_id", flat=True)[:batch_size]
            )
            if not ids:
                return total
            versions.filter(history_id__in=ids).delete()
        total += len(ids)


def _models(label: str | None) -> list[Any]:
    from dorm.contrib.temporal.tracking import tracked_models

    models = tracked_models()
    if label is None:
        return models
    chosen = [m for m in models if m._meta.label.lower() == label.lower()]
    if not chosen:
        known = ", ".join(m._meta.label for m in models) or "none"
        raise CommandError(f"--model {label!r} is not @temporal-tracked; tracked: {known}")
    return chosen


class TemporalCommand(SettingsCommand):
    name = "temporal"
    help = "temporal tables: status (versions, trigger check), prune old versions"
    # The settings' INSTALLED_APPS are imported when the settings load; tests and
    # scripts that configure dorm in code have tracked models without any app list.
    needs_apps = False

    def add_command_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="<action>", required=True)
        status = sub.add_parser(
            "status", help="list tracked models with version counts; check their triggers"
        )
        status.add_argument("--model", metavar="app.Model", help="one tracked model")
        prune_parser = sub.add_parser("prune", help="delete closed versions older than an age")
        prune_parser.add_argument("--older-than", required=True, metavar="AGE", help="e.g. 90d")
        prune_parser.add_argument("--model", metavar="app.Model", help="one tracked model")
        prune_parser.add_argument("--batch-size", type=int, default=1000, metavar="N")

    def run(self, args: argparse.Namespace) -> int | None:
        from dorm.db.connection import connections

        if args.action == "prune":
            try:
                age = parse_age(args.older_than)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            if args.batch_size < 1:
                raise CommandError(f"--batch-size must be at least 1, got {args.batch_size}")
            for model in _models(args.model):
                count = prune(model, age, args.batch_size, using=self.alias)
                print(f"{model._meta.label}: {count} version(s) deleted")
            return 0
        from dorm.contrib.temporal.triggers import trigger_problems

        connection = connections[self.alias]
        tables = set(connection.table_names())
        failed = False
        models = _models(args.model)
        for model in models:
            sibling = model._temporal_model
            if sibling._meta.db_table not in tables or model._meta.db_table not in tables:
                print(f"{model._meta.label}: ERROR table missing (run migrate)", file=sys.stderr)
                failed = True
                continue
            versions = sibling.objects.using(self.alias)
            count, current = versions.count(), versions.filter(valid_to__isnull=True).count()
            problems = trigger_problems(connection, model)
            state = "ok" if not problems else "ERROR " + "; ".join(problems)
            print(f"{model._meta.label}: {count} version(s), {current} current, triggers {state}")
            failed = failed or bool(problems)
        if not models:
            print("no @temporal-tracked models")
        return 1 if failed else 0


COMMANDS: list[type[SettingsCommand]] = [TemporalCommand]
