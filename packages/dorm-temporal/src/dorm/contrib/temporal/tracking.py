"""The ``@temporal`` decorator: build the sibling ``<Model>Temporal`` model of a tracked model.

The sibling holds one row per version of a tracked row: the tracked model's concrete
columns (same names, same types, nullable, without unique, primary-key or foreign-key
constraints: a foreign key becomes a plain column of its target's type), its own primary key
``history_id``, ``valid_from``, ``valid_to`` (NULL for the current version), ``operation``
(``insert`` / ``update`` / ``delete``) and the context columns ``user`` and ``reason``.
The database writes these rows (:mod:`dorm.contrib.temporal.triggers`); the ORM only reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import dorm
from dorm.contrib.temporal.context import context
from dorm.models.fields import AutoField, BigAutoField, BigIntegerField, Field, IntegerField

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper

__all__ = ["SYSTEM_FIELDS", "MirrorColumn", "is_tracked", "temporal", "tracked_models"]

M = TypeVar("M", bound=type)

#: The sibling's own columns, in table order; a tracked model may not use these names.
SYSTEM_FIELDS = ("history_id", "valid_from", "valid_to", "operation", "user", "reason")

# Every tracked model, in decoration order: the schema hook and the CLI look here.
_TRACKED: list[type[dorm.Model]] = []

# Field options that describe constraints or behaviour the version table must not copy.
_DROPPED_OPTIONS = ("primary_key", "unique", "db_index", "db_column", "validators", "default")


class MirrorColumn(Field):
    """A foreign key's column in the version table: a plain value of the target key's type.

    ``to`` is the target model's label (``"app.Model"``) and ``to_field`` the target
    field (its primary key when None): what migrations write. The target is resolved on
    first use, in the registry of the model the column belongs to, so that models
    declared later and historical migration models both work.
    """

    internal_type = "MirrorColumn"

    def __init__(self, to: str | None = None, to_field: str | None = None, **kwargs: Any) -> None:
        self._source: Any = kwargs.pop("source", None)
        super().__init__(**kwargs)
        self._to = to
        self._to_field = to_field

    def _target(self) -> Field:
        if self._source is not None:
            return self._source.target_field  # type: ignore[no-any-return]
        if self._to is None:
            raise TypeError(f"{self!r}: MirrorColumn needs to='app.Model'")
        model = self.model._meta.apps.get_model(self._to)
        if self._to_field is None:
            return model._meta.pk  # type: ignore[no-any-return]
        return model._meta.get_field(self._to_field)  # type: ignore[no-any-return]

    def db_type(self, connection: BaseDatabaseWrapper) -> str:
        return self._target().rel_db_type(connection)

    def to_python(self, value: Any) -> Any:
        return self._target().to_python(value)

    def get_db_prep_value(self, value: Any) -> Any:
        return self._target().get_db_prep_value(value)

    def from_db_value(self, value: Any) -> Any:
        return self._target().from_db_value(value)

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, _path, args, kwargs = super().deconstruct()
        if self._source is not None:
            target = self._target()
            to, to_field = target.model._meta.label, self._source.to_field
        else:
            to, to_field = self._to, self._to_field
        kwargs["to"] = to
        if to_field is not None:
            kwargs["to_field"] = to_field
        return name, "dorm.contrib.temporal.tracking.MirrorColumn", args, kwargs

    def clone(self) -> Field:
        _name, _path, args, kwargs = self.deconstruct()
        return MirrorColumn(*args, **kwargs)


def _mirror(field: Any) -> Field:
    """The version-table field of one concrete field of the tracked model."""
    if field.is_relation:
        return MirrorColumn(source=field, null=True, db_column=field.column)
    if isinstance(field, BigAutoField):
        return BigIntegerField(db_column=field.column)
    if isinstance(field, AutoField):
        return IntegerField(db_column=field.column)
    _name, _path, args, kwargs = field.deconstruct()
    for option in _DROPPED_OPTIONS:
        kwargs.pop(option, None)
    for option in ("auto_now", "auto_now_add"):  # the trigger copies the stored value
        kwargs.pop(option, None)
    # Nullable: versions written before a column was added have no value for it.
    kwargs["null"] = not field.primary_key
    mirrored: Field = type(field)(*args, **kwargs, db_column=field.column)
    return mirrored


def _refuse(model: type, why: str) -> None:
    raise TypeError(
        f"@temporal cannot track {model.__name__}: it is {why}. Decorate a concrete, managed "
        f"model (the one whose table the application writes)."
    )


def temporal(model: M) -> M:
    """Track every write to ``model``'s table in a sibling version table.

    Adds ``<Model>Temporal`` (``model._temporal_model``) to the same app and
    ``model.history``, a manager over the versions where ``pk`` means the tracked row's
    key. Applying it twice is harmless.

    Nothing bypasses the capture: the versions are written by database triggers, not by
    ``post_save`` / ``post_delete``, so ``bulk_create``, ``bulk_update``,
    ``QuerySet.update``, ``QuerySet.delete``, upserts, cascades and raw SQL are recorded
    too. The triggers exist once both tables were created through the schema editor
    (``migrate`` or ``SchemaEditor.create_model``); ``dorm temporal status`` checks them.

    :raises TypeError: ``model`` is not a model class, or it is abstract, a proxy, a
        multi-table child or unmanaged, or it has a field named like one of the version
        table's own columns.
    """
    if not isinstance(model, type) or not issubclass(model, dorm.Model):
        raise TypeError(f"@temporal decorates dorm.Model subclasses, got {model!r}")
    if "_temporal_model" in model.__dict__:
        return model
    opts = model._meta
    if opts.abstract:
        _refuse(model, "abstract (it has no table)")
    if getattr(opts, "proxy", False):
        _refuse(model, "a proxy (its rows live in another model's table)")
    if not opts.managed:
        _refuse(model, "unmanaged (dorm does not create its table, so it cannot add triggers)")
    if getattr(opts, "parents", None):
        _refuse(
            model,
            "a multi-table child (its rows span its parents' tables; one table's "
            "triggers would see part of each row)",
        )
    taken = sorted({f.name for f in opts.concrete_fields} & set(SYSTEM_FIELDS))
    if taken:
        raise TypeError(
            f"@temporal cannot track {model.__name__}: its field(s) {', '.join(taken)} clash "
            f"with the version table's own columns {', '.join(SYSTEM_FIELDS)}; rename them."
        )
    sibling = _build_sibling(model)
    model._temporal_model = sibling  # type: ignore[attr-defined]
    from dorm.contrib.temporal.reads import HistoryManager

    HistoryManager(model, sibling).install()
    _TRACKED[:] = [m for m in _TRACKED if m._meta.label != opts.label]
    _TRACKED.append(model)
    return model


def _build_sibling(model: type) -> type[dorm.Model]:
    opts = model._meta  # type: ignore[attr-defined]
    pk_name = opts.pk.attname
    attrs: dict[str, Any] = {
        "__module__": model.__module__,
        "__qualname__": f"{model.__qualname__}Temporal",
        "history_id": dorm.BigAutoField(primary_key=True),
    }
    for field in opts.concrete_fields:
        attrs[field.attname] = _mirror(field)
    attrs["valid_from"] = dorm.DateTimeField()
    attrs["valid_to"] = dorm.DateTimeField(null=True)
    attrs["operation"] = dorm.CharField(max_length=6)
    attrs["user"] = dorm.TextField(null=True)
    attrs["reason"] = dorm.TextField(null=True)
    table = f"{opts.db_table}_temporal"
    meta = type(
        "Meta",
        (),
        {
            "app_label": opts.app_label,
            "db_table": table,
            "ordering": ["valid_from", "history_id"],
            "indexes": [
                dorm.Index(fields=[pk_name, "valid_from"], name=_index_name(table, "row")),
            ],
        },
    )
    attrs["Meta"] = meta
    sibling = type(f"{model.__name__}Temporal", (dorm.Model,), attrs)
    sibling._temporal_source = model  # type: ignore[attr-defined]
    return sibling


def _index_name(table: str, suffix: str) -> str:
    from dorm.contrib.temporal.triggers import object_name

    return object_name(table, suffix)


# ``temporal.context(...)``: the decorator doubles as the namespace of the context manager.
temporal.context = context  # type: ignore[attr-defined]


def is_tracked(model: type) -> bool:
    """True when ``model`` itself was decorated with ``@temporal``."""
    return "_temporal_model" in getattr(model, "__dict__", {})


def tracked_models() -> list[type[dorm.Model]]:
    """Every model decorated with ``@temporal`` so far, in decoration order."""
    return list(_TRACKED)
