"""Find the ``<app>.migrations`` packages of INSTALLED_APPS and build the graph."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from dorm.conf import settings
from dorm.migrations.exceptions import (
    BadMigrationError,
    MigrationConflictError,
    NodeNotFoundError,
)
from dorm.migrations.graph import MigrationGraph
from dorm.migrations.migration import Migration
from dorm.migrations.recorder import MigrationRecorder

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.migrations.state import ProjectState

__all__ = ["MigrationLoader", "app_label_of"]

MIGRATION_NAME = re.compile(r"^\d{4}_\w+$")


def app_label_of(app: str) -> str:
    """The app label models of the INSTALLED_APPS entry ``app`` get (its last component)."""
    return app.rsplit(".", 1)[-1]


class MigrationLoader:
    """The migrations on disk (``graph``) and, given a connection, which are applied."""

    def __init__(
        self,
        connection: BaseDatabaseWrapper | None = None,
        apps: Iterable[str] | None = None,
    ) -> None:
        self.connection = connection
        self.installed = list(settings.INSTALLED_APPS if apps is None else apps)
        self.migrated_apps: dict[str, str] = {}  # app label -> migrations package
        self.unmigrated_apps: set[str] = set()
        self.applied: set[tuple[str, str]] = set()
        self.graph = MigrationGraph()
        self.build_graph()

    def load_disk(self) -> dict[tuple[str, str], Migration]:
        """Import every migration module; return the Migration instances by key."""
        importlib.invalidate_caches()
        found: dict[tuple[str, str], Migration] = {}
        for app in self.installed:
            label = app_label_of(app)
            package_name = f"{app}.migrations"
            try:
                package = importlib.import_module(package_name)
            except ModuleNotFoundError as exc:
                if exc.name in (package_name, app):
                    self.unmigrated_apps.add(label)
                    continue
                raise
            if not hasattr(package, "__path__"):
                raise BadMigrationError(f"{package_name} is a module; make it a package")
            self.migrated_apps[label] = package_name
            for info in pkgutil.iter_modules(package.__path__):
                if info.ispkg or not MIGRATION_NAME.match(info.name):
                    continue
                module_name = f"{package_name}.{info.name}"
                module = importlib.import_module(module_name)
                klass = getattr(module, "Migration", None)
                if not (isinstance(klass, type) and issubclass(klass, Migration)):
                    raise BadMigrationError(
                        f"migration {module_name} has no class Migration (subclassing "
                        f"dorm.migrations.Migration)"
                    )
                found[(label, info.name)] = klass(info.name, label)
        return found

    def build_graph(self) -> None:
        self.graph = MigrationGraph()
        nodes = self.load_disk()
        for key, migration in nodes.items():
            self.graph.add_node(key, migration)
        for key, migration in sorted(nodes.items()):
            for dependency in migration.dependencies:
                app, name = dependency
                self.graph.add_dependency(key, self._resolve(key, app, name))
        self.graph.check_cycles()
        if self.connection is not None:
            self.applied = MigrationRecorder(self.connection).applied()

    def _resolve(self, child: tuple[str, str], app: str, name: str) -> tuple[str, str]:
        """Allow ``"__first__"`` / ``"__latest__"`` for another app's first or last node."""
        if name in ("__first__", "__latest__"):
            nodes = (
                self.graph.root_nodes(app) if name == "__first__" else self.graph.leaf_nodes(app)
            )
            if len(nodes) != 1:
                raise NodeNotFoundError(
                    f"migration {child[0]}.{child[1]} depends on {app}.{name}, but app {app!r} "
                    f"has {len(nodes)} such migrations ({', '.join(n for _a, n in nodes)})"
                )
            return nodes[0]
        return (app, name)

    def detect_conflicts(self) -> dict[str, list[str]]:
        """Apps with more than one leaf migration: ``{app: [leaf names]}``."""
        conflicts = {}
        for app in sorted({k[0] for k in self.graph.nodes}):
            leaves = self.graph.leaf_nodes(app)
            if len(leaves) > 1:
                conflicts[app] = [name for _app, name in leaves]
        return conflicts

    def check_conflicts(self) -> None:
        conflicts = self.detect_conflicts()
        if conflicts:
            detail = "; ".join(f"{app}: {', '.join(names)}" for app, names in conflicts.items())
            raise MigrationConflictError(
                f"conflicting migrations (more than one leaf in an app): {detail}. "
                f"Make one depend on the other, or write a merge migration depending on both: "
                f"dorm makemigrations --merge"
            )

    def project_state(self, nodes: Iterable[tuple[str, str]] | None = None) -> ProjectState:
        """The state after applying ``nodes`` (default: every migration on disk)."""
        return self.graph.make_state(nodes)
