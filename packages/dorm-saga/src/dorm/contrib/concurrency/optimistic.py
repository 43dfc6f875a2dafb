"""Optimistic locking by a ``version`` column: save only if nobody saved meanwhile.

A model with an integer field named ``version`` (or the name in its class attribute
``optimistic_lock_field``; ``None`` opts out) is versioned: ``with_optimistic_lock(obj)``
saves ``obj`` with ``UPDATE ... WHERE pk = %s AND version = %s`` and bumps the version, and
every ``QuerySet.update()`` of the model that does not set the version itself bumps it too
(``Options.update_defaults``, filled when the class is prepared), so a bulk update also
makes older copies stale.
"""

from __future__ import annotations

from typing import Any

from dorm.contrib.concurrency.exceptions import OptimisticLockError

__all__ = ["prepare_model", "version_field", "with_optimistic_lock"]

_INTEGER_TYPES = frozenset(
    {
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveBigIntegerField",
        "PositiveSmallIntegerField",
    }
)


def version_field(model: type) -> Any:
    """The model's integer version field, or None when it is not versioned."""
    name = getattr(model, "optimistic_lock_field", "version")
    if name is None:
        return None
    opts = model._meta  # type: ignore[attr-defined]
    field = next((f for f in opts.concrete_fields if f.name == name), None)
    if field is None or field.get_internal_type() not in _INTEGER_TYPES:
        return None
    return field


def prepare_model(model: type) -> None:
    """Make ``QuerySet.update()`` of a versioned model bump its version."""
    opts = getattr(model, "_meta", None)
    if opts is None or opts.abstract:
        return
    field = version_field(model)
    if field is None:
        return
    from dorm.expressions import F

    name = field.name
    opts.update_defaults[name] = lambda: F(name) + 1


def with_optimistic_lock(
    instance: Any, fields: list[str] | None = None, using: str | None = None
) -> Any:
    """Save ``instance`` (all its concrete fields, or ``fields``) if its row still has the
    version the instance was read with; bump ``instance``'s version. Returns ``instance``.

    :raises TypeError: the model has no integer ``version`` field, or the instance is unsaved.
    :raises OptimisticLockError: the row's version moved on (or the row is gone); nothing
        was written.
    """
    model = type(instance)
    field = version_field(model)
    if field is None:
        raise TypeError(
            f"with_optimistic_lock: {model.__name__} has no integer 'version' field; add "
            f"version = dorm.IntegerField(default=0)"
        )
    if instance.pk is None:
        raise TypeError(
            f"with_optimistic_lock: this {model.__name__} is not saved yet; save() it first"
        )
    opts = model._meta
    current = getattr(instance, field.attname)
    if fields is None:
        chosen = [f for f in opts.concrete_fields if not f.primary_key and f is not field]
    else:
        chosen = [opts.get_field(name) for name in fields if name != field.name]
    values = {f.attname: getattr(instance, f.attname) for f in chosen}
    values[field.attname] = current + 1
    db = using or getattr(getattr(instance, "_state", None), "db", None) or "default"
    rows = model._default_manager.using(db).filter(pk=instance.pk, **{field.name: current})
    changed = rows.update(**values)
    if changed != 1:
        raise OptimisticLockError(
            f"{model.__name__} pk={instance.pk!r}: the row changed since it was read "
            f"(version {current} is stale, or the row was deleted); reload it and retry"
        )
    setattr(instance, field.attname, current + 1)
    return instance
