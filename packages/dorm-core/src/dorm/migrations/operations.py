"""Migration operations: each changes the project state and the database the same way.

Over 400 lines because every schema operation lives here; RunSQL, RunPython,
SeparateDatabaseAndState, AddCheckConstraintOnline and SeederMigration live in
:mod:`dorm.migrations.data_operations` and are re-exported, so migration files import every
operation from here and each deconstructs to this module's path.

``database_forwards(app_label, editor, from_state, to_state)`` runs with the state before
the operation as ``from_state``; ``database_backwards`` gets the state *after* it as
``from_state`` and the state to return to as ``to_state``. Schema operations pass the
editor the historical model of ``from_state``, as SchemaEditor expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dorm.migrations.exceptions import InvalidStateError
from dorm.migrations.model_options import (
    AlterModelManagers,
    AlterModelOptions,
    AlterModelTable,
    AlterModelTableComment,
    rename_auto_m2m_tables,
)
from dorm.migrations.operation import Operation

if TYPE_CHECKING:
    from dorm.migrations.schema import SchemaEditor
    from dorm.migrations.state import ProjectState
    from dorm.models.base import Model
    from dorm.models.constraints import BaseConstraint, Index
    from dorm.models.fields import Field

__all__ = [
    "AddCheckConstraintOnline",
    "AddConstraint",
    "AddField",
    "AddIndex",
    "AlterField",
    "AlterModelManagers",
    "AlterModelOptions",
    "AlterModelTable",
    "AlterModelTableComment",
    "AlterUniqueTogether",
    "CreateModel",
    "DeleteModel",
    "Operation",
    "RemoveConstraint",
    "RemoveField",
    "RemoveIndex",
    "RenameField",
    "RenameModel",
    "RunPython",
    "RunSQL",
    "SeederMigration",
    "SeparateDatabaseAndState",
    "run_raw",
]


def _model(state: ProjectState, app_label: str, name: str) -> type[Model]:
    return state.apps.get_model(app_label, name)


def _managed(model: type[Model]) -> bool:
    """The model has a table migrations create and change (not unmanaged, not a proxy)."""
    return bool(model._meta.managed) and not model._meta.proxy


# -- models ------------------------------------------------------------------------------------


class CreateModel(Operation):
    """Create a model's table. ``bases`` names the concrete parent of a multi-table child
    (``("app.parent",)``); ``managers`` lists the managers kept for migrations."""

    def __init__(
        self,
        name: str,
        fields: Sequence[tuple[str, Field]],
        options: dict[str, Any] | None = None,
        bases: Sequence[Any] | None = None,
        managers: Sequence[tuple[str, Any]] | None = None,
    ) -> None:
        self.name = name
        self.fields = list(fields)
        self.options = dict(options or {})
        self.bases = tuple(bases or ())
        self.managers = list(managers or [])
        names = [n for n, _f in self.fields]
        if len(names) != len(set(names)):
            raise ValueError(f"CreateModel {name!r}: a field name appears twice in {names!r}")
        managers_named = [n for n, _m in self.managers]
        if len(managers_named) != len(set(managers_named)):
            raise ValueError(
                f"CreateModel {name!r}: a manager name appears twice in {managers_named!r}"
            )

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        from dorm.migrations.state import ModelState, _unbound_clone

        fields = [(n, _unbound_clone(f)) for n, f in self.fields]
        state.add_model(
            ModelState(
                app_label,
                self.name,
                fields,
                self.options,
                self.bases,
                [(n, m.clone()) for n, m in self.managers],
            )
        )

    def database_forwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _model(to_state, app_label, self.name)
        if _managed(model):
            schema_editor.create_model(model)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _model(from_state, app_label, self.name)
        if _managed(model):
            schema_editor.delete_model(model)

    def describe(self) -> str:
        return f"Create {'proxy ' if self.options.get('proxy') else ''}model {self.name}"


class DeleteModel(Operation):
    def __init__(self, name: str) -> None:
        self.name = name

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        state.remove_model(app_label, self.name.lower())

    def database_forwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _model(from_state, app_label, self.name)
        if _managed(model):
            schema_editor.delete_model(model)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _model(to_state, app_label, self.name)
        if _managed(model):
            schema_editor.create_model(model)

    def describe(self) -> str:
        return f"Delete model {self.name}"


class RenameModel(Operation):
    """Rename a model (and its table when the table name is the default one)."""

    def __init__(self, old_name: str, new_name: str) -> None:
        self.old_name = old_name
        self.new_name = new_name

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        from dorm.migrations.state import ModelState, _unbound_clone, related_label

        old = state.get_model_state(app_label, self.old_name)
        state.remove_model(app_label, self.old_name.lower())
        state.add_model(
            ModelState(
                app_label,
                self.new_name,
                old.fields.items(),
                old.options,
                old.bases,
                old.managers,
            )
        )
        old_label = f"{app_label}.{self.old_name.lower()}"
        for ms in state.models.values():
            if any(isinstance(b, str) and b.lower() == old_label for b in ms.bases):
                # A multi-table child of the renamed model.
                ms.bases = tuple(
                    f"{app_label}.{self.new_name.lower()}"
                    if isinstance(b, str) and b.lower() == old_label
                    else b
                    for b in ms.bases
                )
            for name, field in list(ms.fields.items()):
                if related_label(field, ms.app_label, ms.name_lower) != old_label:
                    continue
                if getattr(field, "to", None) == "self":
                    continue
                _name, path, args, kwargs = field.deconstruct()
                kwargs["to"] = f"{app_label}.{self.new_name}"
                clone = _unbound_clone(field)
                ms.fields[name] = type(clone)(*args, **kwargs)
        state.invalidate()

    def database_forwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        old = _model(from_state, app_label, self.old_name)
        new = _model(to_state, app_label, self.new_name)
        if _managed(new):
            schema_editor.alter_db_table(new, old._meta.db_table, new._meta.db_table)
            rename_auto_m2m_tables(schema_editor, old, new)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        new = _model(from_state, app_label, self.new_name)
        old = _model(to_state, app_label, self.old_name)
        if _managed(old):
            schema_editor.alter_db_table(old, new._meta.db_table, old._meta.db_table)
            rename_auto_m2m_tables(schema_editor, new, old)

    def describe(self) -> str:
        return f"Rename model {self.old_name} to {self.new_name}"


# -- fields ------------------------------------------------------------------------------------


class AddField(Operation):
    def __init__(self, model_name: str, name: str, field: Field) -> None:
        self.model_name = model_name
        self.name = name
        self.field = field

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        from dorm.migrations.state import _unbound_clone

        ms = state.get_model_state(app_label, self.model_name)
        if self.name in ms.fields:
            raise InvalidStateError(f"{app_label}.{self.model_name} already has {self.name!r}")
        ms.fields[self.name] = _unbound_clone(self.field)
        state.invalidate()

    def database_forwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _model(from_state, app_label, self.model_name)
        if _managed(model):
            field = _model(to_state, app_label, self.model_name)._meta.get_field(self.name)
            schema_editor.add_field(model, field)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _model(from_state, app_label, self.model_name)
        if _managed(model):
            schema_editor.remove_field(model, model._meta.get_field(self.name))

    def describe(self) -> str:
        return f"Add field {self.name} to {self.model_name}"


class RemoveField(Operation):
    def __init__(self, model_name: str, name: str) -> None:
        self.model_name = model_name
        self.name = name

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        ms = state.get_model_state(app_label, self.model_name)
        if ms.fields.pop(self.name, None) is None:
            raise InvalidStateError(f"{app_label}.{self.model_name} has no field {self.name!r}")
        state.invalidate()

    def database_forwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _model(from_state, app_label, self.model_name)
        if _managed(model):
            schema_editor.remove_field(model, model._meta.get_field(self.name))

    def database_backwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _model(from_state, app_label, self.model_name)
        if _managed(model):
            field = _model(to_state, app_label, self.model_name)._meta.get_field(self.name)
            schema_editor.add_field(model, field)

    def describe(self) -> str:
        return f"Remove field {self.name} from {self.model_name}"


class AlterField(Operation):
    def __init__(self, model_name: str, name: str, field: Field) -> None:
        self.model_name = model_name
        self.name = name
        self.field = field

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        from dorm.migrations.state import _unbound_clone

        ms = state.get_model_state(app_label, self.model_name)
        if self.name not in ms.fields:
            raise InvalidStateError(f"{app_label}.{self.model_name} has no field {self.name!r}")
        ms.fields[self.name] = _unbound_clone(self.field)
        state.invalidate()

    def database_forwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _model(from_state, app_label, self.model_name)
        if _managed(model):
            old = model._meta.get_field(self.name)
            new = _model(to_state, app_label, self.model_name)._meta.get_field(self.name)
            schema_editor.alter_field(model, old, new)

    database_backwards = database_forwards

    def describe(self) -> str:
        return f"Alter field {self.name} on {self.model_name}"


def _rename_in(names: Sequence[str], old: str, new: str) -> list[str]:
    return [("-" if n.startswith("-") else "") + new if n.lstrip("-") == old else n for n in names]


class RenameField(Operation):
    def __init__(self, model_name: str, old_name: str, new_name: str) -> None:
        self.model_name = model_name
        self.old_name = old_name
        self.new_name = new_name

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        ms = state.get_model_state(app_label, self.model_name)
        if self.old_name not in ms.fields:
            raise InvalidStateError(
                f"{app_label}.{self.model_name} has no field {self.old_name!r} to rename"
            )
        ms.fields = {(self.new_name if n == self.old_name else n): f for n, f in ms.fields.items()}
        old, new = self.old_name, self.new_name
        opts = ms.options
        if "unique_together" in opts:
            opts["unique_together"] = [
                tuple(_rename_in(group, old, new)) for group in opts["unique_together"]
            ]
        if "ordering" in opts:
            opts["ordering"] = [
                _rename_in([o], old, new)[0] if isinstance(o, str) else o for o in opts["ordering"]
            ]
        for item in [*opts.get("indexes", ()), *opts.get("constraints", ())]:
            if hasattr(item, "fields"):
                item.fields = _rename_in(item.fields, old, new)
        state.invalidate()

    def database_forwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        self._rename(app_label, schema_editor, from_state, to_state, self.old_name, self.new_name)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        self._rename(app_label, schema_editor, from_state, to_state, self.new_name, self.old_name)

    def _rename(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
        old: str,
        new: str,
    ) -> None:
        model = _model(from_state, app_label, self.model_name)
        if _managed(model):
            new_field = _model(to_state, app_label, self.model_name)._meta.get_field(new)
            schema_editor.rename_field(model, model._meta.get_field(old), new_field)

    def describe(self) -> str:
        return f"Rename field {self.old_name} on {self.model_name} to {self.new_name}"


# -- indexes and constraints -------------------------------------------------------------------


def _find_named(items: Sequence[Any], name: str, what: str, label: str) -> Any:
    for item in items:
        if item.name == name:
            return item
    raise InvalidStateError(f"{label} has no {what} named {name!r}")


class _AddToMeta(Operation):
    """Add an index or a constraint: ``option`` is the Meta list it joins."""

    option = ""
    what = ""

    def __init__(self, model_name: str, item: Any) -> None:
        self.model_name = model_name
        self.item = item

    def _add(self, schema_editor: SchemaEditor, model: type[Model], item: Any) -> None:
        raise NotImplementedError

    def _remove(self, schema_editor: SchemaEditor, model: type[Model], item: Any) -> None:
        raise NotImplementedError

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        ms = state.get_model_state(app_label, self.model_name)
        ms.options[self.option] = [*ms.options.get(self.option, []), self.item]
        state.invalidate()

    def database_forwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _model(from_state, app_label, self.model_name)
        if _managed(model):
            self._add(schema_editor, model, self.item)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _model(from_state, app_label, self.model_name)
        if _managed(model):
            self._remove(schema_editor, model, self.item)

    def describe(self) -> str:
        return f"Create {self.what} {self.item.name} on {self.model_name}"


class _RemoveFromMeta(Operation):
    """Remove a named index or constraint; its definition comes from the state."""

    option = ""
    what = ""

    def __init__(self, model_name: str, name: str) -> None:
        self.model_name = model_name
        self.name = name

    def _add(self, schema_editor: SchemaEditor, model: type[Model], item: Any) -> None:
        raise NotImplementedError

    def _remove(self, schema_editor: SchemaEditor, model: type[Model], item: Any) -> None:
        raise NotImplementedError

    def _item(self, app_label: str, state: ProjectState) -> Any:
        ms = state.get_model_state(app_label, self.model_name)
        items = ms.options.get(self.option, [])
        if self.option == "indexes":
            from dorm.migrations.state import index_name

            # An unnamed index is known by the name the schema editor gave it.
            for item in items:
                if index_name(ms, item) == self.name:
                    return item
        return _find_named(items, self.name, self.what, ms.label_lower)

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        ms = state.get_model_state(app_label, self.model_name)
        found = self._item(app_label, state)  # raises when there is no such item
        ms.options[self.option] = [i for i in ms.options[self.option] if i is not found]
        state.invalidate()

    def database_forwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _model(from_state, app_label, self.model_name)
        if _managed(model):
            self._remove(schema_editor, model, self._item(app_label, from_state))

    def database_backwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _model(from_state, app_label, self.model_name)
        if _managed(model):
            self._add(schema_editor, model, self._item(app_label, to_state))

    def describe(self) -> str:
        return f"Remove {self.what} {self.name} from {self.model_name}"


class _IndexOps:
    option = "indexes"
    what = "index"

    def _add(self, schema_editor: SchemaEditor, model: type[Model], item: Any) -> None:
        schema_editor.add_index(model, item)

    def _remove(self, schema_editor: SchemaEditor, model: type[Model], item: Any) -> None:
        schema_editor.remove_index(model, item)


class _ConstraintOps:
    option = "constraints"
    what = "constraint"

    def _add(self, schema_editor: SchemaEditor, model: type[Model], item: Any) -> None:
        schema_editor.add_constraint(model, item)

    def _remove(self, schema_editor: SchemaEditor, model: type[Model], item: Any) -> None:
        schema_editor.remove_constraint(model, item)


class AddIndex(_IndexOps, _AddToMeta):
    """Add an index; an unnamed one gets the schema editor's name (table and columns),
    which RemoveIndex finds it by."""

    def __init__(self, model_name: str, index: Index) -> None:
        super().__init__(model_name, index)

    @property
    def index(self) -> Index:
        return self.item  # type: ignore[no-any-return]

    def describe(self) -> str:
        if self.index.name:
            return super().describe()
        fields = ", ".join(self.index.fields)
        return f"Create index on ({fields}) on {self.model_name}"


class RemoveIndex(_IndexOps, _RemoveFromMeta):
    pass


class AddConstraint(_ConstraintOps, _AddToMeta):
    def __init__(self, model_name: str, constraint: BaseConstraint) -> None:
        super().__init__(model_name, constraint)

    @property
    def constraint(self) -> BaseConstraint:
        return self.item  # type: ignore[no-any-return]


class RemoveConstraint(_ConstraintOps, _RemoveFromMeta):
    pass


class AlterUniqueTogether(Operation):
    def __init__(self, name: str, unique_together: Sequence[Sequence[str]]) -> None:
        self.name = name
        self.unique_together = [tuple(g) for g in unique_together]

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        ms = state.get_model_state(app_label, self.name)
        if self.unique_together:
            ms.options["unique_together"] = list(self.unique_together)
        else:
            ms.options.pop("unique_together", None)
        state.invalidate()

    def database_forwards(
        self,
        app_label: str,
        schema_editor: SchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = _model(from_state, app_label, self.name)
        if _managed(model):
            new = _model(to_state, app_label, self.name)._meta.unique_together
            schema_editor.alter_unique_together(model, model._meta.unique_together, new)

    database_backwards = database_forwards

    def describe(self) -> str:
        return f"Alter unique_together for {self.name} ({len(self.unique_together)} group(s))"


# -- raw SQL / Python, online constraints and seed data: re-exported from their module -----------

from dorm.migrations.data_operations import (  # noqa: E402
    AddCheckConstraintOnline,
    RunPython,
    RunSQL,
    SeederMigration,
    SeparateDatabaseAndState,
    run_raw,
)
