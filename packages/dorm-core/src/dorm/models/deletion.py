"""The delete collector: cascades, PROTECT / RESTRICT checks, SET_NULL updates, then DELETEs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dorm import signals, transaction
from dorm.exceptions import RestrictedError

if TYPE_CHECKING:
    from dorm.models.base import Model
    from dorm.models.query import QuerySet

__all__ = ["Collector"]

BATCH = 500


class Collector:
    """Collects every object a delete reaches, then deletes them in one transaction.

    Nothing is written while collecting: a PROTECT or RESTRICT found anywhere raises before
    the first statement.
    """

    def __init__(self, using: str, origin: Any = None) -> None:
        self.using = using
        self.origin = origin
        self.data: dict[type[Model], dict[Any, Model]] = {}
        self.field_updates: list[tuple[Any, Any, list[Model]]] = []
        self.restricted: list[tuple[Any, list[Model]]] = []
        self.fast: list[QuerySet] = []

    def _can_fast_delete(self, model: type[Model]) -> bool:
        if signals.pre_delete.has_listeners(model) or signals.post_delete.has_listeners(model):
            return False
        from dorm.models.related import DO_NOTHING

        return all(
            rel.field.on_delete is DO_NOTHING
            for rel in model._meta.related_objects
            if not getattr(rel, "many_to_many", False)
        )

    def collect_queryset(self, qs: QuerySet) -> None:
        assert qs.model is not None
        if self._can_fast_delete(qs.model):
            self.fast.append(qs)
            return
        self.collect(list(qs))

    def collect(self, objs: Iterable[Model], source: Any = None, nullable: bool = False) -> None:
        objs = list(objs)
        if not objs:
            return
        model = type(objs[0])
        bucket = self.data.setdefault(model, {})
        new = [o for o in objs if o.pk not in bucket]
        for obj in new:
            bucket[obj.pk] = obj
        if not new:
            return
        for rel in model._meta.related_objects:
            if getattr(rel, "many_to_many", False):
                continue
            field = rel.field
            from dorm.models.related import DO_NOTHING

            if field.on_delete is DO_NOTHING:
                continue
            values = [getattr(o, field.target_field.attname) for o in new]
            for start in range(0, len(values), BATCH):
                chunk = values[start : start + BATCH]
                sub = field.model._base_manager.using(self.using).filter(
                    **{f"{field.name}__in": chunk}
                )
                sub_objs = list(sub)
                if sub_objs:
                    field.on_delete(self, field, sub_objs, self.using)

    def add_field_update(self, field: Any, value: Any, objs: Iterable[Model]) -> None:
        self.field_updates.append((field, value, list(objs)))

    def add_restricted(self, field: Any, objs: Iterable[Model]) -> None:
        self.restricted.append((field, list(objs)))

    def _check_restricted(self) -> None:
        for field, objs in self.restricted:
            bucket = self.data.get(type(objs[0]), {}) if objs else {}
            blocking = [o for o in objs if o.pk not in bucket]
            if blocking:
                raise RestrictedError(
                    f"cannot delete {field.related_model.__name__}: {len(blocking)} "
                    f"{field.model.__name__} object(s) reference it through the restricted "
                    f"foreign key {field.model.__name__}.{field.name} and are not deleted "
                    f"by the same cascade",
                    blocking,
                )

    def delete(self) -> tuple[int, dict[str, int]]:
        self._check_restricted()
        counts: dict[str, int] = {}
        with transaction.atomic(using=self.using, savepoint=False):
            for model, objs in self.data.items():
                if signals.pre_delete.has_listeners(model):
                    for obj in objs.values():
                        signals.pre_delete.send(
                            sender=model, instance=obj, using=self.using, origin=self.origin
                        )
            for field, value, updated in self.field_updates:
                pks = [o.pk for o in updated if o.pk not in self.data.get(type(o), {})]
                for start in range(0, len(pks), BATCH):
                    field.model._base_manager.using(self.using).filter(
                        pk__in=pks[start : start + BATCH]
                    )._update([(field, value)])
                for obj in updated:
                    obj.__dict__[field.attname] = value
                    obj._state.fields_cache.pop(field.name, None)
            for qs in self.fast:
                n = qs._raw_delete(self.using)
                if n:
                    label = qs.model._meta.label  # type: ignore[union-attr]
                    counts[label] = counts.get(label, 0) + n
            # Collected parents come first: delete in reverse so children go before them.
            for model, objs in reversed(list(self.data.items())):
                pks = list(objs)
                deleted = 0
                for start in range(0, len(pks), BATCH):
                    deleted += (
                        model._base_manager.using(self.using)
                        .filter(pk__in=pks[start : start + BATCH])
                        ._raw_delete(self.using)
                    )
                if deleted:
                    counts[model._meta.label] = counts.get(model._meta.label, 0) + deleted
            for model, objs in self.data.items():
                if signals.post_delete.has_listeners(model):
                    for obj in objs.values():
                        signals.post_delete.send(
                            sender=model, instance=obj, using=self.using, origin=self.origin
                        )
        for model, objs in self.data.items():
            pk = model._meta.pk
            assert pk is not None
            for obj in objs.values():
                obj.__dict__[pk.attname] = None
                obj._state.adding = True
        return sum(counts.values()), counts
