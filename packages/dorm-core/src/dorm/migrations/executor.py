"""Apply and unapply migrations in dependency order, one transaction per migration."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from dorm.db.connection import get_connection
from dorm.migrations.exceptions import NodeNotFoundError
from dorm.migrations.loader import MigrationLoader
from dorm.migrations.recorder import MigrationRecorder
from dorm.migrations.schema import SchemaEditor

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.migrations.migration import Migration
    from dorm.migrations.state import ProjectState

__all__ = ["MigrationExecutor"]

Target = tuple[str, str | None]
Progress = Callable[[int, int, "Migration", float], None]


class MigrationExecutor:
    """Plans and runs migrations on one connection, recording them in ``dorm_migrations``."""

    def __init__(self, connection: BaseDatabaseWrapper | None = None) -> None:
        self.connection = connection or get_connection()
        self.recorder = MigrationRecorder(self.connection)
        self.loader = MigrationLoader(self.connection)

    def reload(self) -> None:
        self.loader = MigrationLoader(self.connection)

    def default_targets(self, app: str | None = None) -> list[Target]:
        """The leaf of every app (or of ``app``): "migrate everything"."""
        graph = self.loader.graph
        return list(graph.leaf_nodes(app))

    def migration_plan(self, targets: Sequence[Target]) -> list[tuple[Migration, bool]]:
        """``[(migration, backwards)]`` taking the database to ``targets``.

        A target ``(app, name)`` applies ``name`` and its dependencies, or, when ``name`` is
        applied already, unapplies what follows it in its app (and what depends on that);
        ``(app, None)`` unapplies the whole app ("zero").
        """
        self.loader.check_conflicts()
        graph = self.loader.graph
        applied = set(self.recorder.applied())
        plan: list[tuple[Migration, bool]] = []
        planned: set[tuple[str, str]] = set()

        def add(key: tuple[str, str], backwards: bool) -> None:
            if key in planned:
                return
            planned.add(key)
            if backwards:
                applied.discard(key)
            else:
                applied.add(key)
            plan.append((graph.nodes[key], backwards))

        for app, name in targets:
            if name is None:
                if app not in self.loader.migrated_apps:
                    raise NodeNotFoundError(f"app {app!r} has no migrations")
                for root in graph.root_nodes(app):
                    for key in graph.backwards_plan(root):
                        if key in applied:
                            add(key, True)
                continue
            key = (app, name)
            if key not in graph.nodes:
                known = ", ".join(n for _a, n in graph.app_nodes(app)) or "none"
                raise NodeNotFoundError(
                    f"no migration {app}.{name}; migrations of {app!r}: {known}"
                )
            if key in applied:
                for child in sorted(graph.children[key]):
                    if child[0] != app:
                        continue
                    for later in graph.backwards_plan(child):
                        if later in applied:
                            add(later, True)
            else:
                for earlier in graph.forwards_plan(key):
                    if earlier not in applied:
                        add(earlier, False)
        return plan

    def state_before(self, migration: Migration) -> ProjectState:
        """The project state the migration applies to (after all its dependencies)."""
        graph = self.loader.graph
        return graph.make_state(sorted(graph.parents[migration.key]))

    def migrate(
        self,
        targets: Sequence[Target],
        fake: bool = False,
        progress: Progress | None = None,
    ) -> list[tuple[Migration, bool]]:
        """Run the plan for ``targets``; return it. Each migration runs in its own
        transaction together with its ``dorm_migrations`` row, so a failure leaves it
        unapplied and unrecorded (and the ones before it done)."""
        plan = self.migration_plan(targets)
        for migration, backwards in plan:
            if backwards and not fake:
                migration.check_reversible()
        self.recorder.ensure_schema()
        total = len(plan)
        for index, (migration, backwards) in enumerate(plan, 1):
            start = time.monotonic()
            if backwards:
                self.unapply_migration(migration, fake=fake)
            else:
                self.apply_migration(migration, fake=fake)
            if progress is not None:
                progress(index, total, migration, time.monotonic() - start)
        return plan

    def apply_migration(self, migration: Migration, fake: bool = False) -> None:
        with SchemaEditor(self.connection, atomic=migration.atomic) as editor:
            if not fake:
                migration.apply(self.state_before(migration), editor)
            self.recorder.record_applied(migration.app_label, migration.name)

    def unapply_migration(self, migration: Migration, fake: bool = False) -> None:
        with SchemaEditor(self.connection, atomic=migration.atomic) as editor:
            if not fake:
                migration.unapply(self.state_before(migration), editor)
            self.recorder.record_unapplied(migration.app_label, migration.name)

    def collect_sql(self, migration: Migration, backwards: bool = False) -> list[str]:
        """The statements the migration would run, without running them (sqlmigrate)."""
        editor = SchemaEditor(self.connection, atomic=False, collect_sql=True)
        with editor:
            state = self.state_before(migration)
            if backwards:
                migration.unapply(state, editor)
            else:
                migration.apply(state, editor)
        return editor.collected
