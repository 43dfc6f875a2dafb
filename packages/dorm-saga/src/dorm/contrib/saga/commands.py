"""``dorm saga list|resume``, ``dorm two-phase recover`` and ``dorm inbox prune``."""

from __future__ import annotations

import argparse
import datetime
import importlib
from typing import Any

from dorm.cli.command import parse_age as _parse_age
from dorm.cli.migration_commands import SettingsCommand
from dorm.exceptions import CommandError

__all__ = ["COMMANDS", "InboxCommand", "SagaCommand", "TwoPhaseCommand", "parse_age"]


def parse_age(text: str, option: str = "--older-than") -> datetime.timedelta:
    """``"90d"`` -> 90 days (``dorm.cli.command.parse_age``), a ``CommandError`` if not."""
    try:
        return _parse_age(text, option)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def _import_modules(names: list[str] | None) -> None:
    for name in names or []:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise CommandError(f"--import {name!r}: {exc}") from exc


def _add_import(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        metavar="MODULE",
        help=f"import MODULE first (it defines {what}); repeatable",
    )


class SagaCommand(SettingsCommand):
    name = "saga"
    help = "durable sagas: list unfinished runs, resume or compensate them"
    needs_apps = False

    def add_command_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="<action>", required=True)
        sub.add_parser("list", help="list the runs that did not finish")
        resume = sub.add_parser(
            "resume", help="continue unfinished runs (or compensate them with --compensate)"
        )
        resume.add_argument("run_id", nargs="?", metavar="RUN_ID", help="one run (default: all)")
        resume.add_argument(
            "--compensate", action="store_true", help="undo the completed steps instead"
        )
        resume.add_argument(
            "--older-than",
            default="60s",
            metavar="AGE",
            help="without RUN_ID: only runs idle this long (default 60s; their process may "
            "still be running them otherwise)",
        )
        _add_import(resume, "the sagas")

    def run(self, args: argparse.Namespace) -> int | None:
        from dorm.contrib.saga import store

        store.ensure_table(self.alias)
        records = store.SagaRunRecord.objects.using(self.alias).filter(
            state__in=list(store.UNFINISHED)
        )
        if args.action == "list":
            found = list(records.order_by("created_at"))
            for r in found:
                print(
                    f"{r.run_id}  {r.name}  {r.state}  completed={r.completed} "
                    f"compensated={r.compensated}  updated {r.updated_at:%Y-%m-%d %H:%M:%S}"
                    + (f"  error: {r.error}" if r.error else "")
                )
            if not found:
                print("no unfinished saga runs")
            return 0
        _import_modules(args.imports)
        return self._resume(args, records)

    def _resume(self, args: argparse.Namespace, records: Any) -> int:
        from dorm.contrib.saga import store
        from dorm.contrib.saga.runner import registered_saga

        if args.run_id:
            chosen = list(records.filter(run_id=args.run_id))
            if not chosen:
                raise CommandError(f"saga run {args.run_id!r}: no unfinished run with this id")
        else:
            cutoff = store.now() - parse_age(args.older_than)
            chosen = list(records.filter(updated_at__lt=cutoff).order_by("created_at"))
        failed = False
        for record in chosen:
            saga = registered_saga(record.name)
            saga.using = self.alias if saga.using == "default" else saga.using
            run = saga.resume(record.run_id, compensate=args.compensate)
            if run is None:
                print(f"{record.run_id}: taken by another process or finished; skipped")
                continue
            outcome = "done" if run.ok else ("failed" if run.compensation_errors else "compensated")
            detail = f"completed={run.completed} compensated={run.compensated}"
            if run.failure:
                detail += f" failed at {run.failure[0]}: {run.failure[1]!r}"
            for name, exc in run.compensation_errors:
                detail += f" compensation {name} raised {exc!r}"
            print(f"{record.run_id}  {record.name}: {outcome}  {detail}")
            failed = failed or bool(run.compensation_errors)
        if not chosen:
            print("no saga runs to resume")
        return 1 if failed else 0


class TwoPhaseCommand(SettingsCommand):
    name = "two-phase"
    help = "two-phase commit: recover prepared transactions left by a dead process"
    needs_apps = False

    def add_command_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="<action>", required=True)
        recover = sub.add_parser(
            "recover",
            help="commit (decision recorded) or roll back dorm's prepared transactions on "
            "every PostgreSQL alias",
        )
        recover.add_argument("--dry-run", action="store_true", help="list, change nothing")
        recover.add_argument(
            "--older-than",
            default="60s",
            metavar="AGE",
            help="roll back undecided transactions only when prepared this long ago "
            "(default 60s: younger ones may still be in flight)",
        )

    def run(self, args: argparse.Namespace) -> int | None:
        from dorm.contrib.two_phase.recovery import recover

        results = recover(dry_run=args.dry_run, older_than=parse_age(args.older_than))
        verb = {"commit": "commit", "rollback": "roll back", "skip": "skip (in flight)"}
        for r in results:
            prefix = "would " if args.dry_run and r.action != "skip" else ""
            when = f"{r.prepared_at:%Y-%m-%d %H:%M:%S}"
            print(f"{r.alias}: {prefix}{verb[r.action]} {r.gid} (prepared {when})")
        if not results:
            print("no prepared dorm transactions")
        return 0


class InboxCommand(SettingsCommand):
    name = "inbox"
    help = "exactly-once inbox: prune old records"
    needs_apps = False

    def add_command_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="<action>", required=True)
        prune = sub.add_parser("prune", help="delete inbox records older than an age")
        prune.add_argument("--model", required=True, metavar="app.Model", help="the inbox model")
        prune.add_argument("--older-than", required=True, metavar="AGE", help="e.g. 30d")
        prune.add_argument("--batch-size", type=int, default=1000, metavar="N")
        _add_import(prune, "the inbox model")

    def run(self, args: argparse.Namespace) -> int | None:
        from dorm.apps import apps
        from dorm.contrib.inbox.records import InboxRecord, prune

        _import_modules(args.imports)
        if args.batch_size < 1:
            raise CommandError(f"--batch-size must be at least 1, got {args.batch_size}")
        age = parse_age(args.older_than)
        try:
            app_label, _, model_name = args.model.partition(".")
            model = apps.get_model(app_label, model_name)
        except (LookupError, ValueError) as exc:
            raise CommandError(f"--model {args.model!r}: {exc}") from None
        if not issubclass(model, InboxRecord):
            raise CommandError(f"--model {args.model!r} is not an InboxRecord subclass")
        count = prune(model, age, args.batch_size, using=self.alias)
        print(f"{model._meta.label}: {count} record(s) deleted")
        return 0


COMMANDS: list[type[SettingsCommand]] = [SagaCommand, TwoPhaseCommand, InboxCommand]
