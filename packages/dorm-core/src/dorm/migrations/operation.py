"""``Operation``: the base class of migration operations (see :mod:`.operations`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dorm.migrations.exceptions import IrreversibleError

if TYPE_CHECKING:
    from dorm.migrations.schema import SchemaEditor
    from dorm.migrations.state import ProjectState

__all__ = ["Operation"]

# Operations defined in these modules deconstruct to the public path.
_PUBLIC_MODULES = frozenset(
    {
        "dorm.migrations.operations",
        "dorm.migrations.data_operations",
        "dorm.migrations.model_options",
        __name__,
    }
)


class Operation:
    """Base class: a state change plus the matching schema (or data) change."""

    reversible = True
    _constructor_args: tuple[list[Any], dict[str, Any]]

    def __new__(cls, *args: Any, **kwargs: Any) -> Operation:
        self = object.__new__(cls)
        self._constructor_args = (list(args), dict(kwargs))
        return self

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        """Apply the change to ``state`` in place."""
        raise NotImplementedError

    def database_forwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        raise NotImplementedError

    def database_backwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        raise IrreversibleError(f"{self.describe()} cannot be unapplied")

    def describe(self) -> str:
        return type(self).__name__

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        """``(import path, args, kwargs)`` that rebuild this operation."""
        args, kwargs = self._constructor_args
        cls = type(self)
        module = cls.__module__
        if module in _PUBLIC_MODULES:
            module = "dorm.migrations.operations"
        return f"{module}.{cls.__qualname__}", list(args), dict(kwargs)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Operation) or type(self) is not type(other):
            return False
        return self.deconstruct() == other.deconstruct()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        args, kwargs = self._constructor_args
        shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
        return f"<{type(self).__name__} {', '.join(shown)}>"
