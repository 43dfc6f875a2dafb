"""``dorm anonymize app.Model --set col=strategy ... [--seed S] [--dry-run] [--after PK]``."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any

from dorm.cli.migration_commands import SettingsCommand
from dorm.exceptions import CommandError, FieldError

__all__ = ["COMMANDS", "AnonymizeCommand", "parse_assignments"]


def parse_assignments(items: list[str]) -> dict[str, str]:
    """``["email=random_email", ...]`` -> ``{"email": "random_email"}``.

    :raises ValueError: an item without ``=``, or a column given twice.
    """
    mapping: dict[str, str] = {}
    for item in items:
        column, sep, strategy = item.partition("=")
        column, strategy = column.strip(), strategy.strip()
        if not sep or not column or not strategy:
            raise ValueError(f"--set {item!r}: expected column=strategy, e.g. email=random_email")
        if column in mapping:
            raise ValueError(f"--set: column {column!r} is given twice")
        mapping[column] = strategy
    return mapping


class AnonymizeCommand(SettingsCommand):
    name = "anonymize"
    help = "mask columns of a model in place (random_email, random_phone, redact, null)"
    # Scripts and tests that configure dorm in code have models without any app list.
    needs_apps = False

    def add_command_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("model", metavar="app.Model", help="the model whose rows to mask")
        parser.add_argument(
            "--set",
            dest="assignments",
            action="append",
            required=True,
            metavar="COLUMN=STRATEGY",
            help="a column and its strategy; repeat for several columns",
        )
        seed = parser.add_mutually_exclusive_group()
        seed.add_argument(
            "--seed",
            help="key of the deterministic pseudonyms (same input, same output in every "
            "table and run)",
        )
        seed.add_argument(
            "--seed-env",
            metavar="VAR",
            help="read the seed from this environment variable (keeps it out of the "
            "process list and shell history)",
        )
        parser.add_argument("--batch-size", type=int, default=1000, metavar="N")
        parser.add_argument("--after", metavar="PK", help="resume after this primary key")
        parser.add_argument(
            "--dry-run", action="store_true", help="check the mapping and count rows; write nothing"
        )

    def run(self, args: argparse.Namespace) -> int | None:
        from dorm.apps import apps
        from dorm.contrib.anonymizer.engine import anonymize_model, plan_anonymization
        from dorm.contrib.anonymizer.exceptions import AnonymizationError

        try:
            model = apps.get_model(args.model)
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        try:
            mapping = parse_assignments(args.assignments)
            seed = _seed(args)
            if args.batch_size < 1:
                raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
            plan = plan_anonymization(model, mapping, seed)
            after = _parse_pk(model, args.after)
        except (ValueError, TypeError, FieldError) as exc:
            raise CommandError(str(exc)) from None
        for name in plan.unlisted_pii:
            print(f"{model._meta.label}.{name}: pii=True but not in --set; left as it is")
        if args.dry_run:
            rows = model._default_manager.using(self.alias)
            if after is not None:
                rows = rows.filter(pk__gt=after)
            columns = ", ".join(plan.describe(c) for c in plan.columns)
            print(f"{model._meta.label}: would anonymize {rows.count()} row(s): {columns}")
            return 0
        try:
            count = anonymize_model(
                model,
                mapping,
                batch_size=args.batch_size,
                seed=seed,
                using=self.alias,
                start_after=after,
            )
        except AnonymizationError as exc:
            print(f"error: {exc}", file=sys.stderr)
            if exc.last_pk is not None:
                print(f"resume with: {_resume_command(args, exc.last_pk)}", file=sys.stderr)
            return 1
        print(f"{model._meta.label}: {count} row(s) anonymized")
        return 0


def _seed(args: argparse.Namespace) -> str | None:
    if args.seed_env is None:
        return args.seed  # type: ignore[no-any-return]
    value = os.environ.get(args.seed_env)
    if not value:
        raise ValueError(f"--seed-env {args.seed_env}: the variable is not set or empty")
    return value


def _parse_pk(model: Any, text: str | None) -> Any:
    if text is None:
        return None
    try:
        return model._meta.pk.to_python(text)
    except Exception as exc:
        raise ValueError(f"--after {text!r} is not a primary key of {model._meta.label}") from exc


def _resume_command(args: argparse.Namespace, last_pk: Any) -> str:
    words = ["dorm", "anonymize", args.model]
    for item in args.assignments:
        words += ["--set", item]
    if args.seed is not None:
        words += ["--seed", "<the same seed>"]
    if args.seed_env is not None:
        words += ["--seed-env", args.seed_env]
    words += ["--batch-size", str(args.batch_size), "--after", str(last_pk)]
    return shlex.join(words)


COMMANDS: list[type[SettingsCommand]] = [AnonymizeCommand]
