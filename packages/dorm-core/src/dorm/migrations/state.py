"""Project state: the models as the migrations describe them, rendered into a private Apps."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dorm.apps import Apps
from dorm.migrations.exceptions import InvalidStateError
from dorm.models.options import DEFAULT_PERMISSIONS

if TYPE_CHECKING:
    from dorm.models.base import Model
    from dorm.models.fields import Field

__all__ = ["ModelState", "ProjectState", "related_label"]

# Meta options kept in a ModelState (app_label and apps are the state's own business).
_OPTION_NAMES = (
    "db_table",
    "ordering",
    "unique_together",
    "indexes",
    "constraints",
    "verbose_name",
    "verbose_name_plural",
    "get_latest_by",
    "default_related_name",
    "managed",
    "permissions",
    "default_permissions",
    "default_manager_name",
    "base_manager_name",
    "db_table_comment",
)


def index_name(state: ModelState, index: Any) -> str:
    """The name of ``index`` on the model of ``state``: its own, or for an unnamed one the
    name the schema editor gives it (from the table and the columns)."""
    from dorm.models.constraints import default_name

    if index.name:
        return str(index.name)
    table = state.options.get("db_table") or f"{state.app_label}_{state.name_lower}"
    columns = []
    for name, _order in index.field_orders():
        field = state.fields.get(name)
        if field is None:
            columns.append(name)
        elif field.db_column:
            columns.append(field.db_column)
        elif field.is_relation and not field.many_to_many:
            columns.append(f"{name}_id")
        else:
            columns.append(name)
    return default_name(table, columns, "idx")


def related_label(field: Field, app_label: str, own: str) -> str | None:
    """``"app.model"`` (lower case) of the model a relation field points at, else None."""
    if not field.is_relation:
        return None
    to = getattr(field, "to", None)
    if to is None:
        return None
    if not isinstance(to, str):
        return str(to._meta.label_lower)
    if to == "self":
        return f"{app_label}.{own}"
    if "." not in to:
        return f"{app_label}.{to.lower()}"
    app, name = to.split(".", 1)
    return f"{app}.{name.lower()}"


def default_bases() -> tuple[Any, ...]:
    from dorm.models.base import Model

    return (Model,)


def manager_signature(managers: Iterable[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """What a migration file would hold for ``managers`` (managers compare by that)."""
    from dorm.migrations.writer import serialize

    return [(name, serialize(manager)[0]) for name, manager in managers]


class ModelState:
    """One model as the migrations know it: name, fields (name -> unbound Field), options,
    bases (``"app.model"`` of a concrete parent, or classes) and the managers kept for
    migrations (``(name, manager)``, see ``from_model``)."""

    def __init__(
        self,
        app_label: str,
        name: str,
        fields: Iterable[tuple[str, Field]],
        options: dict[str, Any] | None = None,
        bases: Iterable[Any] | None = None,
        managers: Iterable[tuple[str, Any]] | None = None,
    ) -> None:
        self.app_label = app_label
        self.name = name
        self.fields: dict[str, Field] = dict(fields)
        self.options: dict[str, Any] = dict(options or {})
        self.bases: tuple[Any, ...] = tuple(bases) if bases else default_bases()
        self.managers: list[tuple[str, Any]] = list(managers or [])
        for base in self.bases:
            if isinstance(base, str) and "." not in base:
                raise InvalidStateError(
                    f"{app_label}.{name}: base {base!r} must be 'app_label.modelname'"
                )
        for field_name, field in self.fields.items():
            if getattr(field, "model", None) is not None:
                raise InvalidStateError(
                    f"{app_label}.{name}.{field_name}: the field is bound to "
                    f"{field.model.__name__}; give ModelState an unbound field (field.clone())"
                )

    @property
    def name_lower(self) -> str:
        return self.name.lower()

    @property
    def label_lower(self) -> str:
        return f"{self.app_label}.{self.name_lower}"

    def __repr__(self) -> str:
        return f"<ModelState {self.app_label}.{self.name}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModelState):
            return NotImplemented
        return (
            (self.app_label, self.name, self.options, self.bases)
            == (other.app_label, other.name, other.options, other.bases)
            and manager_signature(self.managers) == manager_signature(other.managers)
            and list(self.fields) == list(other.fields)
            and all(
                f.deconstruct()[1:] == other.fields[n].deconstruct()[1:]
                for n, f in self.fields.items()
            )
        )

    @classmethod
    def from_model(cls, model: type[Model]) -> ModelState:
        """Describe ``model``; its fields are cloned, automatic M2M tables are left implicit."""
        opts = model._meta
        fields = []
        if not opts.proxy:  # a proxy's fields are its concrete model's
            for field in [*opts.local_fields, *opts.local_many_to_many]:
                fields.append((field.name, _unbound_clone(field)))
        options: dict[str, Any] = {"proxy": True} if opts.proxy else {}
        default_table = f"{opts.app_label}_{opts.model_name}"
        for name in _OPTION_NAMES:
            value = getattr(opts, name)
            if name == "db_table" and (value == default_table or opts.proxy):
                continue
            if name == "verbose_name" and value == opts.model_name:
                continue
            if name == "verbose_name_plural" and value == f"{opts.verbose_name}s":
                continue
            if name == "managed" and value:
                continue
            if name == "default_permissions" and value == DEFAULT_PERMISSIONS:
                continue
            if value is None or value == []:
                continue
            options[name] = copy.deepcopy(list(value) if isinstance(value, list) else value)
        if opts.proxy:
            # The model it proxies, as declared (another proxy, or the concrete model).
            parents: list[Any] = [b for b in model.__bases__ if getattr(b, "_meta", None)]
            bases: tuple[str, ...] | None = tuple(
                b._meta.label_lower for b in parents if not b._meta.abstract
            )
        else:
            bases = tuple(p._meta.label_lower for p in opts.parents) or None
        return cls(opts.app_label, opts.object_name, fields, options, bases, _managers_of(model))

    def clone(self) -> ModelState:
        fields = [(name, _unbound_clone(field)) for name, field in self.fields.items()]
        return ModelState(
            self.app_label,
            self.name,
            fields,
            copy.deepcopy(self.options),
            self.bases,
            [(name, manager.clone()) for name, manager in self.managers],
        )

    def related_labels(self) -> set[str]:
        """Labels (``app.model``) of the models this one's relation fields and bases point
        at."""
        labels = {related_label(f, self.app_label, self.name_lower) for f in self.fields.values()}
        labels.update(b.lower() for b in self.bases if isinstance(b, str))
        labels.discard(None)
        labels.discard(self.label_lower)
        return labels  # type: ignore[return-value]

    def render(self, apps: Apps) -> type[Model]:
        """Build a real model class registered in ``apps`` (never the global registry)."""
        from dorm.models.base import Model

        meta_attrs = copy.deepcopy(self.options)
        names = {name for name, _manager in self.managers}
        for option in ("default_manager_name", "base_manager_name"):
            # A manager the state does not keep (a migration written before managers were
            # part of it): the historical model goes without the option.
            if meta_attrs.get(option) not in names:
                meta_attrs.pop(option, None)
        meta_attrs["app_label"] = self.app_label
        meta_attrs["apps"] = apps
        attrs: dict[str, Any] = {
            "Meta": type("Meta", (), meta_attrs),
            "__module__": f"__fake__.{self.app_label}",
        }
        for name, field in self.fields.items():
            attrs[name] = _unbound_clone(field)
        for name, manager in self.managers:
            attrs[name] = manager.clone()
        bases: list[Any] = []
        for base in self.bases:
            if isinstance(base, str):
                app, model_name = base.split(".", 1)
                try:
                    base = apps.get_model(app, model_name)
                except LookupError:
                    raise InvalidStateError(
                        f"cannot build the historical model {self.app_label}.{self.name}: "
                        f"its base {base} is not in the migration state. Is a migration "
                        f"missing a dependency?"
                    ) from None
            bases.append(base)
        if Model not in bases and not any(issubclass(b, Model) for b in bases):
            bases.append(Model)
        try:
            return type(self.name, tuple(bases), attrs)
        except Exception as exc:
            raise InvalidStateError(
                f"cannot build the historical model {self.app_label}.{self.name}: {exc}"
            ) from exc


def _managers_of(model: type[Model]) -> list[tuple[str, Any]]:
    """The managers a migration keeps, as Django's ModelState.from_model chooses them: each
    ``use_in_migrations`` manager, and a plain Manager standing for a custom default (or
    base) manager under its name; none when that is just ``objects``."""
    from dorm.models.manager import Manager

    opts = model._meta
    default = opts.default_manager_name or (opts.managers[0].name if opts.managers else None)
    kept: list[tuple[str, Any]] = []
    shim = None
    for manager in opts.managers:
        if manager.name in {name for name, _m in kept}:
            continue
        if manager.use_in_migrations:
            kept.append((manager.name, manager.clone()))
        elif manager.name in (default, opts.base_manager_name):
            stand_in = Manager()
            if manager.name == default:
                shim = stand_in
            kept.append((manager.name, stand_in))
    if len(kept) == 1 and kept[0][0] == "objects" and kept[0][1] is shim:
        return []
    return kept


def _unbound_clone(field: Field) -> Field:
    clone = field.clone()
    clone.name = ""
    return clone


class ProjectState:
    """Every model of the project at one point of the migration history."""

    def __init__(self, models: dict[tuple[str, str], ModelState] | None = None) -> None:
        self.models: dict[tuple[str, str], ModelState] = dict(models or {})
        self._apps: Apps | None = None

    def __repr__(self) -> str:
        return f"<ProjectState {len(self.models)} models>"

    def add_model(self, model_state: ModelState) -> None:
        key = (model_state.app_label, model_state.name_lower)
        if key in self.models:
            raise InvalidStateError(f"the state already has a model {model_state.label_lower}")
        self.models[key] = model_state
        self.invalidate()

    def remove_model(self, app_label: str, name_lower: str) -> None:
        try:
            del self.models[(app_label, name_lower.lower())]
        except KeyError:
            raise InvalidStateError(f"the state has no model {app_label}.{name_lower}") from None
        self.invalidate()

    def get_model_state(self, app_label: str, name: str) -> ModelState:
        try:
            return self.models[(app_label, name.lower())]
        except KeyError:
            known = ", ".join(f"{a}.{m}" for a, m in sorted(self.models)) or "none"
            raise InvalidStateError(
                f"the migration state has no model {app_label}.{name}; known models: {known}. "
                f"Is a migration missing a dependency?"
            ) from None

    def invalidate(self) -> None:
        """Forget the rendered apps; call after changing a ModelState in place."""
        self._apps = None

    def clone(self) -> ProjectState:
        return ProjectState({key: ms.clone() for key, ms in self.models.items()})

    @classmethod
    def from_apps(cls, apps: Apps, app_labels: Iterable[str] | None = None) -> ProjectState:
        """The state of the models registered in ``apps`` (optionally only some apps)."""
        wanted = set(app_labels) if app_labels is not None else None
        state = cls()
        for model in apps.get_models():
            opts = model._meta
            if opts.auto_created or opts.abstract:
                continue
            if wanted is not None and opts.app_label not in wanted:
                continue
            state.models[(opts.app_label, opts.model_name)] = ModelState.from_model(model)
        return state

    @property
    def apps(self) -> Apps:
        """A fresh Apps holding every model rendered (cached until the state changes)."""
        if self._apps is None:
            apps = Apps()
            for model_state in self._render_order():
                model_state.render(apps)
            pending = apps.pending_references()
            if pending:
                raise InvalidStateError(
                    f"relations in the migration state point at models it does not have: "
                    f"{', '.join(pending)}. Add the migration that creates them as a dependency"
                )
            self._apps = apps
        return self._apps

    def _render_order(self) -> list[ModelState]:
        """Models before the models that point at them (cycles fall back to lazy binding)."""
        by_label = {ms.label_lower: ms for ms in self.models.values()}
        order: list[ModelState] = []
        done: set[str] = set()
        visiting: set[str] = set()

        def visit(label: str) -> None:
            if label in done or label in visiting or label not in by_label:
                return
            visiting.add(label)
            for dep in sorted(by_label[label].related_labels()):
                visit(dep)
            visiting.discard(label)
            done.add(label)
            order.append(by_label[label])

        for label in sorted(by_label):
            visit(label)
        return order
