"""The ``dorm worker`` and ``dorm tasks list|dead|retry|purge`` commands."""

from __future__ import annotations

import argparse
import datetime
import importlib
import sys
from typing import Any

from dorm.cli.migration_commands import SettingsCommand
from dorm.exceptions import CommandError

__all__ = ["COMMANDS", "TasksCommand", "WorkerCommand"]

_QUEUE_HELP = (
    "a TaskQueue as 'package.module:attribute' (importing the module registers its tasks); "
    "default: the TASK_QUEUES setting"
)


def load_queue(spec: str) -> Any:
    """Import ``module:attribute`` and return the TaskQueue it names."""
    from dorm.contrib.tasks.queue import TaskQueue

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CommandError(f"queue {spec!r}: expected 'package.module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CommandError(f"queue {spec!r}: cannot import {module_name!r}: {exc}") from exc
    queue = getattr(module, attr, None)
    if not isinstance(queue, TaskQueue):
        raise CommandError(
            f"queue {spec!r}: {module_name}.{attr} is {type(queue).__name__}, not a TaskQueue"
        )
    return queue


def _queues(specs: list[str]) -> list[Any]:
    if not specs:
        from dorm.conf import settings

        try:
            specs = list(settings.TASK_QUEUES or [])
        except AttributeError:
            specs = []
    if not specs:
        raise CommandError(
            "no queue given: pass 'package.module:attribute' or set TASK_QUEUES in the settings"
        )
    return [load_queue(s) for s in specs]


class WorkerCommand(SettingsCommand):
    name = "worker"
    help = "run a task worker: claim queued tasks, run them, retry failures (Ctrl-C stops)"

    def add_command_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("queue", nargs="?", help=_QUEUE_HELP)
        parser.add_argument("--once", action="store_true", help="run every task due now, then exit")
        parser.add_argument("--max-tasks", type=int, metavar="N", help="exit after N tasks")
        parser.add_argument(
            "--no-listen", action="store_true", help="poll even where LISTEN/NOTIFY works"
        )
        parser.add_argument(
            "--no-cron", action="store_true", help="do not queue the cron tasks every minute"
        )

    def run(self, args: argparse.Namespace) -> int | None:
        queue = _queues([args.queue] if args.queue else [])[0]
        if args.database != "default":
            queue.using = self.alias
        count = queue.run(
            once=args.once,
            max_tasks=args.max_tasks,
            listen=not args.no_listen,
            cron=not args.no_cron,
        )
        print(f"{count} task(s) run", file=sys.stderr)
        return 0


def _line(row: Any) -> str:
    error = (row.last_error or "").strip().splitlines()
    last = error[-1][:100] if error else ""
    eta = row.eta.strftime("%Y-%m-%d %H:%M:%S") if row.eta else "-"
    return (
        f"{row.pk:>8}  {row.status:<8} {row.priority:>4}  {row.attempts:>3}  {eta}  "
        f"{row.name}{'  ' + last if last else ''}"
    )


class TasksCommand(SettingsCommand):
    name = "tasks"
    help = "inspect and manage the task queue: list, dead, retry, purge"

    def add_command_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="<action>", required=True)
        show = sub.add_parser("list", help="list tasks (newest first)")
        show.add_argument("queue", nargs="?", help=_QUEUE_HELP)
        show.add_argument("--status", choices=["queued", "running", "done", "dead"])
        show.add_argument("--limit", type=int, default=50)
        dead = sub.add_parser("dead", help="list the dead letters (tasks out of attempts)")
        dead.add_argument("queue", nargs="?", help=_QUEUE_HELP)
        dead.add_argument("--limit", type=int, default=50)
        retry = sub.add_parser("retry", help="queue dead tasks again, attempts reset")
        retry.add_argument("queue", nargs="?", help=_QUEUE_HELP)
        retry.add_argument("--id", type=int, action="append", dest="ids", metavar="ID")
        retry.add_argument("--all", action="store_true", help="every dead task")
        purge = sub.add_parser("purge", help="delete finished tasks")
        purge.add_argument("queue", nargs="?", help=_QUEUE_HELP)
        purge.add_argument("--status", choices=["done", "dead"], action="append", dest="statuses")
        purge.add_argument(
            "--older-than",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="only rows finished at least this long ago",
        )

    def run(self, args: argparse.Namespace) -> int | None:
        queue = _queues([args.queue] if args.queue else [])[0]
        objects = queue.model.objects.using(self.alias)
        if args.action in ("list", "dead"):
            qs = objects.all()
            status = "dead" if args.action == "dead" else args.status
            if status:
                qs = qs.filter(status=status)
            rows = list(qs.order_by("-id")[: max(args.limit, 0)])
            print(f"{'id':>8}  {'status':<8} {'prio':>4}  {'try':>3}  {'eta':<19}  name")
            for row in rows:
                print(_line(row))
            print(f"({len(rows)} shown)")
            return 0
        now = datetime.datetime.now(datetime.UTC)
        if args.action == "retry":
            if not args.ids and not args.all:
                raise CommandError("retry: pass --id ID (repeatable) or --all")
            qs = objects.filter(status="dead")
            if args.ids:
                qs = qs.filter(pk__in=args.ids)
            count = qs.update(
                status="queued", attempts=0, eta=now, lease_until=None, finished_at=None
            )
            if count and queue.channel and queue.connection().vendor == "postgresql":
                from dorm.contrib.listen_notify import notify

                notify(queue.channel, using=self.alias)
            print(f"{count} task(s) queued again")
            return 0
        statuses = args.statuses or ["done"]
        qs = objects.filter(status__in=statuses)
        if args.older_than > 0:
            cutoff = now - datetime.timedelta(seconds=args.older_than)
            qs = qs.filter(finished_at__lt=cutoff)
        deleted = qs.delete()
        count = deleted[0] if isinstance(deleted, tuple) else int(deleted)
        print(f"{count} task(s) deleted")
        return 0


COMMANDS: list[type[SettingsCommand]] = [WorkerCommand, TasksCommand]
