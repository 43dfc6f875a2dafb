"""Compare two ProjectStates and list the operations that turn one into the other."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dorm.migrations import operations as ops
from dorm.migrations.model_options import ALTER_OPTION_KEYS
from dorm.migrations.state import default_bases, index_name, manager_signature, related_label
from dorm.migrations.writer import serialize

if TYPE_CHECKING:
    from dorm.migrations.state import ModelState, ProjectState
    from dorm.models.fields import Field

__all__ = ["MigrationAutodetector", "PlannedMigration"]

_Key = tuple[str, str]  # (app_label, model name in lower case)


@dataclass
class PlannedMigration:
    """One migration ``arrange_for_graph`` proposes: feed it to MigrationWriter."""

    app_label: str
    name: str
    operations: list[Any]
    dependencies: list[tuple[str, str]] = field(default_factory=list)


class MigrationAutodetector:
    """Detect the operations from ``from_state`` to ``to_state``, app by app.

    Renames are guessed: a deleted and a created model of one app with the same fields is a
    RenameModel, a removed and an added field of one model with the same definition a
    RenameField, each only when exactly one candidate matches.
    """

    def __init__(self, from_state: ProjectState, to_state: ProjectState) -> None:
        self.from_state = from_state
        self.to_state = to_state
        #: ``{old label: new label}`` of the models detected as renamed (lower case).
        self.renamed_models: dict[str, str] = {}

    # -- comparing fields ------------------------------------------------------------------------

    def _signature(self, field: Field, app_label: str, own: str, old: bool) -> Any:
        """``deconstruct()`` without the name, relation targets normalised (and renamed)."""
        _name, path, args, kwargs = field.deconstruct()
        kwargs = dict(kwargs)
        for key, value in kwargs.items():
            # Expressions and fields (db_default, a GeneratedField's expression and
            # output_field) compare by identity: compare what a migration file would hold.
            if (
                hasattr(value, "resolve_expression")
                or hasattr(value, "deconstruct")
                and hasattr(value, "contribute_to_class")
            ):
                kwargs[key] = serialize(value)[0]
        target = related_label(field, app_label, own)
        if target is not None:
            if old:
                target = self.renamed_models.get(target, target)
            kwargs["to"] = target
        if "through" in kwargs and isinstance(kwargs["through"], str):
            through = kwargs["through"].lower()
            kwargs["through"] = self.renamed_models.get(through, through) if old else through
        return path, args, kwargs

    def _fields_signature(self, state: ModelState, old: bool, own: str) -> Any:
        return [
            (name, self._signature(f, state.app_label, own, old))
            for name, f in sorted(state.fields.items())
        ]

    # -- the public entry point ------------------------------------------------------------------

    def changes(self, app_labels: Iterable[str] | None = None) -> dict[str, list[Any]]:
        """Return ``{app_label: [operation, ...]}`` for every app with changes.

        Within an app the order is: model renames, index/constraint/unique_together removals,
        table renames (AlterModelTable), field renames, field removals, model creations (a
        model after those its foreign keys point at), field additions and alterations,
        index/constraint/unique_together additions and Meta options, then model deletions
        (referring models first).
        """
        wanted = set(app_labels) if app_labels is not None else None
        old = {k: v for k, v in self.from_state.models.items() if wanted is None or k[0] in wanted}
        new = {k: v for k, v in self.to_state.models.items() if wanted is None or k[0] in wanted}
        added = sorted(set(new) - set(old))
        removed = sorted(set(old) - set(new))
        self.renamed_models = {}
        renames = self._detect_model_renames(old, new, added, removed)
        for old_key, new_key in renames:
            added.remove(new_key)
            removed.remove(old_key)
        kept = [(key, key) for key in sorted(set(old) & set(new))] + renames
        kept.sort(key=lambda pair: pair[1])

        phases: dict[str, dict[str, list[Any]]] = {}

        def emit(app: str, phase: str, operation: Any) -> None:
            phases.setdefault(app, {}).setdefault(phase, []).append(operation)

        for old_key, new_key in renames:
            emit(
                new_key[0],
                "rename_model",
                ops.RenameModel(old_name=old[old_key].name, new_name=new[new_key].name),
            )
        for old_key, new_key in kept:
            self._diff_model(old[old_key], new[new_key], emit)
        for app, created in self._created_in_order(new, added):
            for phase, operation in created:
                emit(app, phase, operation)
        for app, deleted in self._deleted_in_order(old, removed):
            for operation in deleted:
                emit(app, "delete_model", operation)

        order = (
            "rename_model",
            "remove_meta",
            "alter_table",
            "rename_field",
            "remove_field",
            "create_model",
            "add_field",
            "alter_field",
            "add_meta",
            "delete_model",
        )
        return {
            app: [operation for phase in order for operation in phases[app].get(phase, [])]
            for app in sorted(phases)
        }

    # -- models ----------------------------------------------------------------------------------

    def _detect_model_renames(
        self,
        old: dict[_Key, ModelState],
        new: dict[_Key, ModelState],
        added: list[_Key],
        removed: list[_Key],
    ) -> list[tuple[_Key, _Key]]:
        matches: dict[_Key, list[_Key]] = {}
        for new_key in added:
            new_sig = self._fields_signature(new[new_key], False, new_key[1])
            for old_key in removed:
                if old_key[0] != new_key[0]:
                    continue
                # A self-reference names the model: compare as if it had the new name.
                self.renamed_models = {f"{old_key[0]}.{old_key[1]}": f"{new_key[0]}.{new_key[1]}"}
                if self._fields_signature(old[old_key], True, old_key[1]) == new_sig:
                    matches.setdefault(new_key, []).append(old_key)
        self.renamed_models = {}
        olds_used = [o for candidates in matches.values() for o in candidates]
        renames = [
            (candidates[0], new_key)
            for new_key, candidates in sorted(matches.items())
            if len(candidates) == 1 and olds_used.count(candidates[0]) == 1
        ]
        for old_key, new_key in renames:
            self.renamed_models[f"{old_key[0]}.{old_key[1]}"] = f"{new_key[0]}.{new_key[1]}"
        return renames

    def _created_in_order(
        self, new: dict[_Key, ModelState], added: list[_Key]
    ) -> list[tuple[str, list[tuple[str, Any]]]]:
        """CreateModel operations per app, each model after the models its relations need.

        A cycle of foreign keys is broken by creating one model without the offending fields
        and adding them once their targets exist.
        """
        result: list[tuple[str, list[tuple[str, Any]]]] = []
        for app in sorted({key[0] for key in added}):
            pending = {key[1]: new[key] for key in added if key[0] == app}
            needs = {
                name: {
                    t.split(".", 1)[1]
                    for t in state.related_labels()
                    if t.startswith(app + ".") and t != f"{app}.{name}"
                }
                & set(pending)
                for name, state in pending.items()
            }
            created: set[str] = set()
            emitted: list[tuple[str, Any]] = []
            deferred: list[tuple[str, Any]] = []
            while pending:
                ready = sorted(n for n in pending if needs[n] <= created)
                if not ready:
                    ready = [min(pending)]
                for name in ready:
                    state = pending.pop(name)
                    fields: list[tuple[str, Field]] = []
                    later: list[tuple[str, Field]] = []
                    for field_name, f in state.fields.items():
                        t = related_label(f, app, name)
                        late = t is not None and t.split(".", 1)[1] in pending
                        (later if late else fields).append((field_name, f))
                    emitted.append(("create_model", _create_model(state, fields)))
                    deferred.extend(
                        ("add_field", ops.AddField(model_name=state.name, name=field_name, field=f))
                        for field_name, f in later
                    )
                    created.add(name)
            result.append((app, emitted + deferred))
        return result

    def _deleted_in_order(
        self, old: dict[_Key, ModelState], removed: list[_Key]
    ) -> list[tuple[str, list[Any]]]:
        """DeleteModel operations per app, a model after every deleted model pointing at it."""
        result: list[tuple[str, list[Any]]] = []
        for app in sorted({key[0] for key in removed}):
            pending = {key[1]: old[key] for key in removed if key[0] == app}
            referrers: dict[str, set[str]] = {name: set() for name in pending}
            for name, state in pending.items():
                for t in state.related_labels():  # its relations and its bases
                    if t.startswith(app + ".") and t != f"{app}.{name}":
                        target = t.split(".", 1)[1]
                        if target in referrers:
                            referrers[target].add(name)
            done: set[str] = set()
            operations: list[Any] = []
            while pending:
                ready = sorted(n for n in pending if referrers[n] <= done) or [min(pending)]
                for name in ready:
                    operations.append(ops.DeleteModel(name=pending.pop(name).name))
                    done.add(name)
            result.append((app, operations))
        return result

    # -- fields and options of one model ---------------------------------------------------------

    def _diff_model(self, old: ModelState, new: ModelState, emit: Any) -> None:
        app, name = new.app_label, new.name
        own_old, own_new = old.name_lower, new.name_lower
        old_names, new_names = set(old.fields), set(new.fields)
        removed = sorted(old_names - new_names)
        added = [n for n in new.fields if n not in old_names]
        old_sig = {n: self._signature(old.fields[n], app, own_old, True) for n in old.fields}
        new_sig = {n: self._signature(new.fields[n], app, own_new, False) for n in new.fields}

        matches = {a: [r for r in removed if old_sig[r] == new_sig[a]] for a in added}
        used = [r for candidates in matches.values() for r in candidates]
        renamed = {
            candidates[0]: a
            for a, candidates in matches.items()
            if len(candidates) == 1 and used.count(candidates[0]) == 1
        }

        old_together = {tuple(g) for g in old.options.get("unique_together") or []}
        new_together = {tuple(g) for g in new.options.get("unique_together") or []}
        if old_together - new_together:
            kept = sorted(old_together & new_together)
            emit(app, "remove_meta", ops.AlterUniqueTogether(name=name, unique_together=kept))
        old_indexes = list(old.options.get("indexes") or [])
        new_indexes = list(new.options.get("indexes") or [])
        for index in old_indexes:
            if index not in new_indexes:
                emit(
                    app,
                    "remove_meta",
                    ops.RemoveIndex(model_name=name, name=index_name(old, index)),
                )
        # Constraints added by AddCheckConstraintOnline live in the state only.
        old_constraints = [
            c for c in old.options.get("constraints") or [] if not getattr(c, "from_sql", False)
        ]
        new_constraints = list(new.options.get("constraints") or [])
        for constraint in old_constraints:
            if constraint not in new_constraints:
                emit(
                    app, "remove_meta", ops.RemoveConstraint(model_name=name, name=constraint.name)
                )

        old_table = old.options.get("db_table") or f"{app}_{new.name_lower}"
        new_table = new.options.get("db_table") or f"{app}_{new.name_lower}"
        if old_table != new_table:
            emit(
                app,
                "alter_table",
                ops.AlterModelTable(name=name, table=new.options.get("db_table")),
            )
        old_comment = old.options.get("db_table_comment")
        new_comment = new.options.get("db_table_comment")
        if old_comment != new_comment:
            emit(
                app,
                "add_meta",
                ops.AlterModelTableComment(name=name, table_comment=new_comment),
            )
        if manager_signature(old.managers) != manager_signature(new.managers):
            emit(app, "add_meta", ops.AlterModelManagers(name=name, managers=new.managers))
        old_options = {k: old.options[k] for k in ALTER_OPTION_KEYS if k in old.options}
        new_options = {k: new.options[k] for k in ALTER_OPTION_KEYS if k in new.options}
        if old_options != new_options:
            emit(app, "add_meta", ops.AlterModelOptions(name=name, options=new_options))

        for old_name in sorted(renamed):
            emit(
                app,
                "rename_field",
                ops.RenameField(model_name=name, old_name=old_name, new_name=renamed[old_name]),
            )
        for field_name in removed:
            if field_name not in renamed:
                emit(app, "remove_field", ops.RemoveField(model_name=name, name=field_name))
        for field_name in added:
            if field_name not in renamed.values():
                emit(
                    app,
                    "add_field",
                    ops.AddField(model_name=name, name=field_name, field=new.fields[field_name]),
                )
        for field_name in new.fields:
            if field_name in old_names and old_sig[field_name] != new_sig[field_name]:
                emit(
                    app,
                    "alter_field",
                    ops.AlterField(model_name=name, name=field_name, field=new.fields[field_name]),
                )

        for index in new_indexes:
            if index not in old_indexes:
                emit(app, "add_meta", ops.AddIndex(model_name=name, index=index))
        for constraint in new_constraints:
            if constraint not in old_constraints:
                emit(app, "add_meta", ops.AddConstraint(model_name=name, constraint=constraint))
        if new_together - old_together:
            emit(
                app,
                "add_meta",
                ops.AlterUniqueTogether(name=name, unique_together=sorted(new_together)),
            )

    # -- naming and dependencies -----------------------------------------------------------------

    def arrange_for_graph(
        self, changes: Mapping[str, list[Any]], graph_leaves: Mapping[str, str | None]
    ) -> dict[str, PlannedMigration]:
        """Name each app's migration and list its dependencies.

        ``graph_leaves`` maps an app label to its current leaf migration (None or absent for an
        app without migrations). An app's migration depends on its own leaf and on the
        migration of every other app holding a model its relations point at: the one planned
        here when that app changes too, else that app's leaf.
        """
        names: dict[str, str] = {}
        for app, operations in changes.items():
            leaf = graph_leaves.get(app)
            if not leaf:
                names[app] = "0001_initial"
                continue
            match = re.match(r"^(\d+)_", leaf)
            number = int(match.group(1)) + 1 if match else 1
            suffix = _describe(operations)
            names[app] = f"{number:04d}_auto" + (f"_{suffix}" if suffix else "")
        planned: dict[str, PlannedMigration] = {}
        for app in sorted(changes):
            deps: set[tuple[str, str]] = set()
            leaf = graph_leaves.get(app)
            if leaf:
                deps.add((app, leaf))
            for other in sorted(_apps_needed(app, changes[app])):
                if other in names:
                    deps.add((other, names[other]))
                elif graph_leaves.get(other):
                    deps.add((other, str(graph_leaves[other])))
            planned[app] = PlannedMigration(app, names[app], list(changes[app]), sorted(deps))
        return planned


def _create_model(state: ModelState, fields: list[tuple[str, Field]]) -> Any:
    # Only the arguments that differ from the defaults appear in the written file.
    kwargs: dict[str, Any] = {"name": state.name, "fields": fields}
    if state.options:
        kwargs["options"] = state.options
    if state.bases != default_bases():
        kwargs["bases"] = state.bases
    if state.managers:
        kwargs["managers"] = state.managers
    return ops.CreateModel(**kwargs)


def _fields_of(operation: Any) -> list[tuple[str, Any]]:
    if isinstance(operation, ops.CreateModel):
        return list(operation.fields)
    if isinstance(operation, (ops.AddField, ops.AlterField)):
        return [(operation.name, operation.field)]
    return []


def _apps_needed(app: str, operations: list[Any]) -> set[str]:
    needed: set[str] = set()
    for operation in operations:
        for _name, f in _fields_of(operation):
            target = related_label(f, app, "")
            if target is not None and not target.startswith(app + "."):
                needed.add(target.split(".", 1)[0])
        for base in (
            getattr(operation, "bases", ()) if isinstance(operation, ops.CreateModel) else ()
        ):
            if isinstance(base, str) and not base.lower().startswith(app + "."):
                needed.add(base.split(".", 1)[0])
    return needed


def _describe(operations: list[Any]) -> str:
    """A short snake_case summary of ``operations`` for the migration's file name."""
    parts: list[str] = []
    for operation in operations:
        kind = type(operation).__name__
        model = str(getattr(operation, "model_name", "") or getattr(operation, "name", "")).lower()
        if isinstance(operation, ops.CreateModel):
            parts.append(model)
        elif isinstance(operation, ops.DeleteModel):
            parts.append(f"delete_{model}")
        elif isinstance(operation, ops.RenameModel):
            parts.append(f"rename_{operation.old_name}_{operation.new_name}".lower())
        elif isinstance(operation, ops.AddField):
            parts.append(f"{model}_{operation.name}")
        elif isinstance(operation, ops.RemoveField):
            parts.append(f"remove_{model}_{operation.name}")
        elif isinstance(operation, ops.AlterField):
            parts.append(f"alter_{model}_{operation.name}")
        elif isinstance(operation, ops.RenameField):
            parts.append(f"rename_{model}_{operation.old_name}_{operation.new_name}")
        else:
            parts.append(re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower() + f"_{model}")
    text = "_".join(dict.fromkeys(parts))
    if len(text) > 40:
        text = text[:40].rsplit("_", 1)[0]
    return re.sub(r"[^a-z0-9_]", "", text.lower()).strip("_")
