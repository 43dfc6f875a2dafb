"""``dorm`` subcommands for schema work: makemigrations, migrate, showmigrations, sqlmigrate,
shell and dbshell.

Every command here takes ``--settings MODULE`` and ``--database ALIAS`` through
``SettingsCommand``, which loads the settings once before the command runs and turns the
configuration and migration errors into ``CommandError`` (one line, exit code 1).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import time
from typing import TYPE_CHECKING, Any

from dorm.cli.command import Command
from dorm.exceptions import CommandError, ImproperlyConfigured

# pathlib, shutil and the migration machinery are imported where they are used: every
# plugin command derives from SettingsCommand, and ``dorm --help`` imports them all.
if TYPE_CHECKING:
    from pathlib import Path

    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.migrations.autodetector import PlannedMigration
    from dorm.migrations.executor import MigrationExecutor
    from dorm.migrations.loader import MigrationLoader
    from dorm.migrations.migration import Migration

__all__ = [
    "COMMANDS",
    "DbShellCommand",
    "MakeMigrationsCommand",
    "MigrateCommand",
    "SettingsCommand",
    "ShellCommand",
    "ShowMigrationsCommand",
    "SqlMigrateCommand",
]

_NAME = re.compile(r"^\w+$")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class SettingsCommand(Command):
    """A command that needs the settings: adds ``--settings`` and ``--database``.

    Subclasses add their own options in ``add_command_arguments`` and work in ``run``;
    ``self.alias`` is the chosen database alias, checked against ``DATABASES``.
    """

    #: False for commands that can run without any DATABASES entry.
    needs_database = True
    #: True for commands that are about the models of INSTALLED_APPS.
    needs_apps = False

    def __init__(self) -> None:
        self.alias = "default"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--settings",
            metavar="MODULE",
            help="settings module to use (sets DORM_SETTINGS; default: settings.py in the "
            "working directory)",
        )
        parser.add_argument(
            "--database",
            metavar="ALIAS",
            default="default",
            help="DATABASES alias to use (default: 'default')",
        )
        self.add_command_arguments(parser)

    def add_command_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the command's own options and positional arguments."""

    def handle(self, args: argparse.Namespace) -> int | None:
        from dorm.migrations.exceptions import MigrationError

        try:
            self.load_settings(args)
            return self.run(args)
        except (MigrationError, ImproperlyConfigured) as exc:
            raise CommandError(_one_line(exc)) from exc

    def load_settings(self, args: argparse.Namespace) -> None:
        """Point discovery at ``--settings`` (if given), load the settings, check the alias."""
        from dorm.conf import settings
        from dorm.db.connection import reset_connections

        if args.settings:
            os.environ["DORM_SETTINGS"] = args.settings
            settings._reset()
            reset_connections()
        databases = settings.DATABASES  # runs discovery on first use
        self.alias = args.database
        if self.needs_apps and not settings.INSTALLED_APPS:
            where = (
                f"the settings module {settings.SETTINGS_MODULE!r} installs no app "
                f"(INSTALLED_APPS is empty and no package next to it has a models.py)"
                if settings.SETTINGS_MODULE
                else "no settings found"
            )
            raise CommandError(
                f"{where}: add a settings.py (with INSTALLED_APPS and DATABASES) to the "
                f"working directory, set DORM_SETTINGS, or pass --settings MODULE"
            )
        if not self.needs_database:
            return
        if not databases:
            raise CommandError(
                "no database configured: add a settings.py (with DATABASES) to the working "
                "directory, set DORM_SETTINGS, or pass --settings MODULE"
            )
        if self.alias not in databases:
            raise CommandError(
                f"unknown database alias {self.alias!r} (DATABASES has: "
                f"{', '.join(sorted(databases))})"
            )

    def run(self, args: argparse.Namespace) -> int | None:
        raise NotImplementedError(f"{type(self).__qualname__}.run() is not implemented")

    # -- helpers shared by the migration commands --------------------------------------------

    @property
    def connection(self) -> BaseDatabaseWrapper:
        from dorm.db.connection import get_connection

        return get_connection(self.alias)

    @staticmethod
    def installed_labels() -> dict[str, str]:
        """``{app label: INSTALLED_APPS entry}``."""
        from dorm.conf import settings
        from dorm.migrations.loader import app_label_of

        return {app_label_of(app): app for app in settings.INSTALLED_APPS}

    def check_apps(self, labels: list[str]) -> list[str]:
        """``labels`` (or every installed app when empty), each checked to be installed."""
        installed = self.installed_labels()
        for label in labels:
            if label not in installed:
                known = ", ".join(sorted(installed)) or "none"
                raise CommandError(f"unknown app {label!r} (installed apps: {known})")
        return list(labels) if labels else sorted(installed)

    @staticmethod
    def resolve_migration(loader: MigrationLoader, app: str, name: str) -> str:
        """The full name of ``app``'s migration ``name`` (or a unique prefix of it)."""
        names = [n for _a, n in loader.graph.app_nodes(app)]
        if app not in loader.migrated_apps or not names:
            raise CommandError(f"app {app!r} has no migrations")
        if name in names:
            return name
        matches = [n for n in names if n.startswith(name)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise CommandError(
                f"migration name {name!r} of app {app!r} is ambiguous: {', '.join(matches)}"
            )
        raise CommandError(f"no migration {name!r} in app {app!r} (migrations: {', '.join(names)})")


def _exec(binary: str, argv: list[str], env: dict[str, str]) -> None:
    """Replace this process with ``binary`` (a seam tests replace)."""
    os.execvpe(binary, argv, env)


def _display_path(path: Path) -> str:
    from pathlib import Path

    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _migrations_dir(app: str) -> Path:
    """The ``migrations`` package directory of the INSTALLED_APPS entry ``app`` (created)."""
    from pathlib import Path

    module = importlib.import_module(app)
    paths = list(getattr(module, "__path__", []))
    if not paths:
        raise CommandError(f"app {app!r} is a module, not a package: it cannot hold migrations")
    directory = Path(paths[0]) / "migrations"
    directory.mkdir(exist_ok=True)
    init = directory / "__init__.py"
    if not init.exists():
        init.write_text("")
    return directory


class MakeMigrationsCommand(SettingsCommand):
    name = "makemigrations"
    help = "write new migrations for the model changes of installed apps"
    needs_database = False
    needs_apps = True

    def add_command_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("apps", nargs="*", metavar="app", help="app labels (default: all)")
        parser.add_argument("--name", help="use this name instead of the generated one")
        parser.add_argument("--empty", action="store_true", help="write an empty migration")
        parser.add_argument(
            "--check",
            action="store_true",
            help="write nothing; exit 1 when model changes have no migration yet",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="show what would be written, write nothing"
        )
        parser.add_argument(
            "--merge",
            action="store_true",
            help="write a merge migration for each app with conflicting migrations",
        )

    def run(self, args: argparse.Namespace) -> int | None:
        from dorm.apps import apps
        from dorm.migrations.autodetector import MigrationAutodetector
        from dorm.migrations.loader import MigrationLoader
        from dorm.migrations.state import ProjectState

        if args.name is not None and not _NAME.match(args.name):
            raise CommandError(f"--name {args.name!r} must be letters, digits and underscores")
        labels = self.check_apps(list(args.apps))
        if args.empty and not args.apps:
            raise CommandError("--empty needs the app label(s) to write the migration for")
        loader = MigrationLoader()
        if args.merge:
            return self._merge(loader, labels, args.name, args.dry_run)
        loader.check_conflicts()
        leaves: dict[str, str | None] = {}
        for label in labels:
            nodes = loader.graph.leaf_nodes(label)
            leaves[label] = nodes[0][1] if nodes else None
        detector = MigrationAutodetector(
            loader.project_state(), ProjectState.from_apps(apps, labels)
        )
        changes: dict[str, list[Any]] = (
            {label: [] for label in labels} if args.empty else detector.changes(labels)
        )
        if not changes:
            print("No changes detected" + (f" in {', '.join(labels)}" if args.apps else ""))
            return 0
        planned = detector.arrange_for_graph(changes, leaves)
        if args.empty and args.name is None:
            for migration in planned.values():
                migration.name = migration.name.split("_", 1)[0] + "_custom"
        if args.name is not None:
            old_names = {app: m.name for app, m in planned.items()}
            renamed = {
                app: name.split("_", 1)[0] + "_" + args.name for app, name in old_names.items()
            }
            for migration in planned.values():
                migration.dependencies = [
                    (dep, renamed[dep] if old_names.get(dep) == dep_name else dep_name)
                    for dep, dep_name in migration.dependencies
                ]
            for app, migration in planned.items():
                migration.name = renamed[app]
        if args.check:
            for migration in planned.values():
                self._report(migration, None)
            print("Model changes have no migration yet: run 'dorm makemigrations'")
            return 1
        installed = self.installed_labels()
        for app, migration in sorted(planned.items()):
            self._write(installed[app], migration, args.dry_run)
        return 0

    def _merge(
        self, loader: MigrationLoader, labels: list[str], name: str | None, dry_run: bool
    ) -> int:
        """Write, for each app of ``labels`` with several leaf migrations, one migration
        that depends on all of them and has no operations."""
        from dorm.migrations.autodetector import PlannedMigration

        conflicts = {a: leaves for a, leaves in loader.detect_conflicts().items() if a in labels}
        if not conflicts:
            print("No conflicts detected to merge.")
            return 0
        installed = self.installed_labels()
        for app, leaves in sorted(conflicts.items()):
            numbers = [int(n.split("_", 1)[0]) for n in leaves if n.split("_", 1)[0].isdigit()]
            suffix = name or ("merge_" + "_".join(sorted(leaves)))[:60].rstrip("_")
            merge = PlannedMigration(
                app,
                f"{max(numbers, default=0) + 1:04d}_{suffix}",
                [],
                [(app, leaf) for leaf in sorted(leaves)],
            )
            print(f"Merging {app}: {', '.join(sorted(leaves))}")
            self._write(installed[app], merge, dry_run)
        return 0

    def _write(self, app: str, migration: PlannedMigration, dry_run: bool) -> None:
        from dorm.migrations.writer import MigrationWriter

        writer = MigrationWriter(
            migration.name, migration.app_label, migration.dependencies, migration.operations
        )
        try:
            source = writer.as_string()
        except ValueError as exc:
            raise CommandError(_one_line(exc)) from exc
        if dry_run:
            from pathlib import Path

            module = importlib.import_module(app)
            base = Path(list(getattr(module, "__path__", ["."]))[0]) / "migrations"
            self._report(migration, base / writer.filename)
            return
        path = _migrations_dir(app) / writer.filename
        if path.exists():
            raise CommandError(f"{_display_path(path)} exists already; not overwriting it")
        path.write_text(source)
        self._report(migration, path)

    @staticmethod
    def _report(migration: PlannedMigration, path: Path | None) -> None:
        print(f"Migrations for {migration.app_label!r}:")
        shown = _display_path(path) if path is not None else migration.name
        print(f"  {shown}")
        for operation in migration.operations:
            print(f"    - {operation.describe()}")


class MigrateCommand(SettingsCommand):
    name = "migrate"
    help = "apply (or unapply, down to a target or 'zero') the migrations"

    def add_command_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("app", nargs="?", help="only this app")
        parser.add_argument(
            "target", nargs="?", help="migrate the app to this migration ('zero': none)"
        )
        parser.add_argument(
            "--fake", action="store_true", help="record the migrations without running them"
        )
        parser.add_argument("--plan", action="store_true", help="print the plan, change nothing")

    def run(self, args: argparse.Namespace) -> int | None:
        from dorm.migrations.executor import MigrationExecutor

        executor = MigrationExecutor(self.connection)
        executor.loader.check_conflicts()
        targets = self._targets(executor, args.app, args.target)
        if args.plan:
            plan = executor.migration_plan(targets)
            if not plan:
                print("No planned migration operations.")
            else:
                print("Planned operations:")
            for migration, backwards in plan:
                print(f"{migration}" + (" (unapply)" if backwards else ""))
                for operation in migration.operations:
                    print(f"    {'Undo ' if backwards else ''}{operation.describe()}")
            return 0
        progress = self._progress if sys.stdout.isatty() else None
        start = time.monotonic()
        plan = executor.migrate(targets, fake=args.fake, progress=progress)
        if not plan:
            print("No migrations to apply.")
            return 0
        done = sum(1 for _m, backwards in plan if not backwards)
        undone = len(plan) - done
        parts = []
        if done:
            parts.append(f"applied {done} migration{'s' if done != 1 else ''}")
        if undone:
            parts.append(f"unapplied {undone} migration{'s' if undone != 1 else ''}")
        summary = " and ".join(parts)
        fake = " (faked: recorded only)" if args.fake else ""
        print(f"{summary[0].upper()}{summary[1:]}{fake} in {time.monotonic() - start:.2f}s.")
        return 0

    def _targets(
        self, executor: MigrationExecutor, app: str | None, target: str | None
    ) -> list[tuple[str, str | None]]:
        loader = executor.loader
        if app is None:
            return list(executor.default_targets())
        self.check_apps([app])
        if app not in loader.migrated_apps or not loader.graph.app_nodes(app):
            raise CommandError(f"app {app!r} has no migrations")
        if target is None:
            return list(executor.default_targets(app))
        if target == "zero":
            return [(app, None)]
        return [(app, self.resolve_migration(loader, app, target))]

    @staticmethod
    def _progress(index: int, total: int, migration: Migration, elapsed: float) -> None:
        ops = len(migration.operations)
        print(
            f"  [{index}/{total}] {migration} ({ops} operation{'s' if ops != 1 else ''}) "
            f"OK {elapsed:.2f}s",
            flush=True,
        )


class ShowMigrationsCommand(SettingsCommand):
    name = "showmigrations"
    help = "list each app's migrations, [X] when applied"

    def add_command_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("apps", nargs="*", metavar="app", help="app labels (default: all)")

    def run(self, args: argparse.Namespace) -> int | None:
        from dorm.migrations.loader import MigrationLoader

        labels = self.check_apps(list(args.apps))
        loader = MigrationLoader(self.connection)
        for label in labels:
            print(label)
            nodes = loader.graph.app_nodes(label)
            if not nodes:
                print(" (no migrations)")
            for key in nodes:
                print(f" [{'X' if key in loader.applied else ' '}] {key[1]}")
        return 0


class SqlMigrateCommand(SettingsCommand):
    name = "sqlmigrate"
    help = "print the SQL statements of one migration"

    def add_command_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("app", help="app label")
        parser.add_argument("migration", help="migration name (or a unique prefix)")
        parser.add_argument(
            "--backwards", action="store_true", help="the SQL that unapplies the migration"
        )

    def run(self, args: argparse.Namespace) -> int | None:
        from dorm.migrations.executor import MigrationExecutor

        self.check_apps([args.app])
        executor = MigrationExecutor(self.connection)
        name = self.resolve_migration(executor.loader, args.app, args.migration)
        migration = executor.loader.graph.nodes[(args.app, name)]
        statements = executor.collect_sql(migration, backwards=args.backwards)
        if not statements:
            print("-- (no SQL statements)")
        for sql in statements:
            sql = sql.strip()
            print(sql if sql.endswith(";") else f"{sql};")
        return 0


class ShellCommand(SettingsCommand):
    name = "shell"
    help = "a Python shell with the models of the installed apps imported"
    needs_database = False

    def add_command_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("-c", "--command", help="run this code instead of a shell")
        parser.add_argument(
            "--plain", action="store_true", help="use the standard Python shell, not IPython"
        )

    def namespace(self) -> dict[str, Any]:
        import dorm
        from dorm.apps import apps

        namespace: dict[str, Any] = {"dorm": dorm}
        for label in sorted(self.installed_labels()):
            for model in apps.all_models.get(label, {}).values():
                namespace[model.__name__] = model
        return namespace

    def run(self, args: argparse.Namespace) -> int | None:
        namespace = self.namespace()
        if args.command is not None:
            exec(compile(args.command, "<dorm shell -c>", "exec"), namespace)
            return 0
        models = sorted(k for k in namespace if k != "dorm")
        banner = f"dorm shell; imported: dorm{''.join(', ' + m for m in models)}"
        if not args.plain:
            try:
                from IPython import start_ipython  # type: ignore[import-not-found]
            except ImportError:
                pass
            else:
                print(banner)
                start_ipython(argv=[], user_ns=namespace)
                return 0
        import code

        code.interact(banner=banner, local=namespace, exitmsg="")
        return 0


class DbShellCommand(SettingsCommand):
    name = "dbshell"
    help = "open the database's command-line client (sqlite3 or psql)"

    def client_argv(self) -> tuple[list[str], dict[str, str]]:
        """The client's ``argv`` and environment for the chosen alias."""
        from dorm.conf import settings

        config = settings.DATABASES[self.alias]
        env = dict(os.environ)
        if config["ENGINE"] == "sqlite":
            return ["sqlite3", str(config["NAME"])], env
        if config["ENGINE"] == "postgresql":
            argv = ["psql"]
            if config["USER"]:
                argv += ["-U", str(config["USER"])]
            if config["HOST"]:
                argv += ["-h", str(config["HOST"])]
            if config["PORT"]:
                argv += ["-p", str(config["PORT"])]
            argv.append(str(config["NAME"]))
            if config["PASSWORD"]:
                env["PGPASSWORD"] = str(config["PASSWORD"])
            for option, variable in (("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT")):
                if option in config["OPTIONS"]:
                    env[variable] = str(config["OPTIONS"][option])
            return argv, env
        raise CommandError(
            f"dbshell supports sqlite and postgresql, not {config['ENGINE']!r} "
            f"(DATABASES[{self.alias!r}])"
        )

    def run(self, args: argparse.Namespace) -> int | None:
        import shutil

        argv, env = self.client_argv()
        binary = shutil.which(argv[0])
        if binary is None:
            raise CommandError(
                f"the {argv[0]!r} client is not installed (or not on PATH); install it to "
                f"use dorm dbshell"
            )
        sys.stdout.flush()
        _exec(binary, argv, env)
        return 0  # only reached when the exec is replaced (tests)


COMMANDS: list[type[Command]] = [
    MakeMigrationsCommand,
    MigrateCommand,
    ShowMigrationsCommand,
    SqlMigrateCommand,
    ShellCommand,
    DbShellCommand,
]
