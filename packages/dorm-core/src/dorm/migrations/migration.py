"""``Migration``: the base class of every ``NNNN_name.py`` migration file."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from dorm.migrations.exceptions import IrreversibleError, MigrationError

if TYPE_CHECKING:
    from dorm.migrations.operations import Operation
    from dorm.migrations.schema import SchemaEditor
    from dorm.migrations.state import ProjectState

__all__ = ["Migration"]


class Migration:
    """Operations for one app, applied after the ``(app_label, name)`` dependencies.

    ``atomic = False`` runs the operations without the per-migration transaction.
    """

    dependencies: ClassVar[list[tuple[str, str]]] = []
    operations: ClassVar[list[Operation]] = []
    initial: ClassVar[bool] = False
    atomic: ClassVar[bool] = True

    def __init__(self, name: str, app_label: str) -> None:
        self.name = name
        self.app_label = app_label
        # Copies, so code that edits one instance's lists never touches the class.
        self.operations = list(type(self).operations)  # type: ignore[misc]
        self.dependencies = [tuple(d) for d in type(self).dependencies]  # type: ignore[misc]

    @property
    def key(self) -> tuple[str, str]:
        return (self.app_label, self.name)

    def __repr__(self) -> str:
        return f"<Migration {self.app_label}.{self.name}>"

    def __str__(self) -> str:
        return f"{self.app_label}.{self.name}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Migration) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def mutate_state(self, state: ProjectState) -> ProjectState:
        """Return a copy of ``state`` with this migration's operations applied."""
        new = state.clone()
        for operation in self.operations:
            operation.state_forwards(self.app_label, new)
        return new

    def apply(self, state: ProjectState, schema_editor: SchemaEditor) -> ProjectState:
        """Run the operations forwards from ``state``; return the state after them."""
        for index, operation in enumerate(self.operations, 1):
            after = state.clone()
            operation.state_forwards(self.app_label, after)
            try:
                operation.database_forwards(self.app_label, schema_editor, state, after)
            except Exception as exc:
                raise self._failed(index, operation, exc, backwards=False) from exc
            state = after
        return state

    def _failed(
        self, index: int, operation: Operation, exc: Exception, backwards: bool
    ) -> MigrationError:
        """The error naming the app, the migration and the operation that failed."""
        text = " ".join(str(exc).split())
        message = (
            f"{self.app_label}.{self.name}: operation {index} of {len(self.operations)} "
            f"({'undo ' if backwards else ''}{operation.describe()}) failed: "
            f"{type(exc).__name__}: {text}"
        )
        if not backwards and "already exists" in text:
            message += (
                f". If the database already has this migration's changes (made by hand or by "
                f"another tool), record it without running it: "
                f"dorm migrate {self.app_label} {self.name} --fake"
            )
        return MigrationError(message)

    def check_reversible(self) -> None:
        """Raise IrreversibleError naming the first operation that cannot be unapplied."""
        for operation in self.operations:
            if not operation.reversible:
                raise IrreversibleError(
                    f"migration {self} cannot be unapplied: operation "
                    f"{operation.describe()!r} is not reversible"
                )

    def unapply(self, state: ProjectState, schema_editor: SchemaEditor) -> ProjectState:
        """Undo the operations, last first. ``state`` is the state *before* this migration
        (the one it was applied to, which is also what is returned)."""
        self.check_reversible()
        steps = []
        before = state
        for operation in self.operations:
            after = before.clone()
            operation.state_forwards(self.app_label, after)
            steps.append((operation, before, after))
            before = after
        for index, (operation, before, after) in reversed(list(enumerate(steps, 1))):
            try:
                operation.database_backwards(self.app_label, schema_editor, after, before)
            except Exception as exc:
                raise self._failed(index, operation, exc, backwards=True) from exc
        return state
