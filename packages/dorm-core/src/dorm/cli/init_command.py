"""``dorm init``: scaffold a project (settings.py and one app) from a template."""

from __future__ import annotations

import argparse
import keyword
import re
import sys
from typing import TYPE_CHECKING

from dorm.cli.command import Command
from dorm.exceptions import CommandError

# importlib.resources, pathlib and string are imported where they are used: ``dorm --help``
# imports this module but runs none of it.
if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = ["COMMANDS", "InitCommand", "render_template"]

TEMPLATES = ("plain", "fastapi-postgres", "litestar-sqlite")
_APP_DIR = "app"  # the template folder that becomes <app>/
_SUFFIX = ".tmpl"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Names the project itself uses (settings.py, conftest.py, tests/) or that shadow a package.
_RESERVED = frozenset({"dorm", "settings", "conftest", "tests", "pytest"})

_SETUP_HINTS = {
    "plain": ["pip install pytest"],
    "fastapi-postgres": [
        "pip install fastapi uvicorn httpx pytest 'dorm-core[postgresql]'",
        "export DATABASE_URL=postgresql://user:password@localhost:5432/{app}",
    ],
    "litestar-sqlite": ["pip install litestar uvicorn pytest"],
}
_RUN_HINTS = {
    "plain": [],
    "fastapi-postgres": ["uvicorn {app}.main:app --reload"],
    "litestar-sqlite": ["uvicorn {app}.main:app --reload"],
}


def _template_root(template: str) -> Traversable:
    from importlib import resources

    return resources.files("dorm.cli").joinpath("templates", template)


def _walk(node: Traversable, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    found: list[tuple[tuple[str, ...], str]] = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.is_dir():
            found.extend(_walk(child, (*prefix, child.name)))
        elif child.name.endswith(_SUFFIX):
            found.append(((*prefix, child.name[: -len(_SUFFIX)]), child.read_text("utf-8")))
    return found


def render_template(template: str, app: str) -> dict[str, str]:
    """The files of ``template`` for the app ``app``: ``{relative path: text}``.

    Template files live in ``dorm/cli/templates/<template>/`` as ``*.py.tmpl``; their
    ``app/`` folder becomes ``<app>/`` and ``$app`` in their text becomes the app name.
    Every template has a ``conftest.py`` enabling dorm's pytest plugin and tests in
    ``tests/`` that pass right after ``dorm makemigrations`` and ``dorm migrate``.
    """
    if template not in TEMPLATES:
        raise CommandError(f"unknown template {template!r}; choose from {', '.join(TEMPLATES)}")
    from string import Template

    files: dict[str, str] = {}
    for parts, text in _walk(_template_root(template)):
        if parts[0] == _APP_DIR:
            parts = (app, *parts[1:])
        files["/".join(parts)] = Template(text).substitute(app=app)
    return files


def _check_app_name(app: str) -> None:
    if not _IDENTIFIER.fullmatch(app) or keyword.iskeyword(app):
        raise CommandError(
            f"--app {app!r} is not a valid Python package name "
            f"(letters, digits and underscores, not starting with a digit, not a keyword)"
        )
    if app in _RESERVED or app in sys.stdlib_module_names:
        raise CommandError(f"--app {app!r} would shadow the module {app!r}; choose another name")


class InitCommand(Command):
    name = "init"
    help = "create settings.py and an app package from a template (plain, fastapi-postgres, ...)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "directory",
            nargs="?",
            default=".",
            help="where to write the project (default: the current directory; created if missing)",
        )
        parser.add_argument(
            "--app", default="app", help="name of the app package to create (default: app)"
        )
        parser.add_argument(
            "--template",
            choices=TEMPLATES,
            default="plain",
            help="plain: SQLite, a model and its tests; fastapi-postgres / litestar-sqlite add "
            "<app>/main.py, an async CRUD API tested through the framework's test client",
        )
        parser.add_argument(
            "--force", action="store_true", help="overwrite files that exist already"
        )

    def handle(self, args: argparse.Namespace) -> int | None:
        from pathlib import Path

        app: str = args.app
        template: str = args.template
        _check_app_name(app)
        target = Path(args.directory)
        if target.exists() and not target.is_dir():
            raise CommandError(f"{target} exists and is not a directory")
        files = render_template(template, app)
        paths = {rel: target / rel for rel in files}
        if not args.force:
            existing = [str(path) for path in paths.values() if path.exists()]
            if existing:
                raise CommandError(
                    f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; "
                    f"use --force to overwrite"
                )
        for rel, text in files.items():
            path = paths[rel]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        print(f"Created a {template} project in {target}:")
        for rel in files:
            print(f"  {rel}")
        print("Next:")
        if target.resolve() != Path.cwd().resolve():
            print(f"  cd {target}")
        commands = [
            *_SETUP_HINTS[template],
            "dorm makemigrations",
            "dorm migrate",
            "pytest",
            *_RUN_HINTS[template],
        ]
        for command in commands:
            print(f"  {command.format(app=app)}")
        return 0


COMMANDS: list[type[Command]] = [InitCommand]
