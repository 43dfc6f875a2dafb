"""The delete collector: cascades, PROTECT / RESTRICT checks, SET_NULL updates, then DELETEs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dorm import signals, transaction
from dorm.exceptions import ProtectedError, RestrictedError

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
        self.protected: list[tuple[Any, list[Model]]] = []
        self._depth = 0
        self.fast: list[QuerySet] = []

    def _can_fast_delete(self, model: type[Model]) -> bool:
        if model._meta.parents:
            return False  # the rows of its parents' tables go too
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
        """Add ``objs`` and what their on_delete rules reach.

        :raises ProtectedError: once the whole cascade is collected, listing the objects of
            every protected foreign key met (not only the first), as Django does.
        """
        self._depth += 1
        try:
            self._collect(objs)
        finally:
            self._depth -= 1
        if self._depth == 0 and self.protected:
            self._raise_protected()

    def _raise_protected(self) -> None:
        keys: dict[str, None] = {}
        targets: dict[str, None] = {}
        found: list[Model] = []
        for field, objs in self.protected:
            keys[f"'{field.model.__name__}.{field.name}'"] = None
            targets[repr(field.related_model.__name__)] = None
            found.extend(objs)
        self.protected = []
        raise ProtectedError(
            f"Cannot delete some instances of model {', '.join(targets)} because they are "
            f"referenced through protected foreign keys: {', '.join(keys)}.",
            found,
        )

    def _collect(self, objs: Iterable[Model], via: Any = None) -> None:
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
        if model._meta.parents:
            self._collect_parents(model, new)
        for rel in model._meta.related_objects:
            if getattr(rel, "many_to_many", False):
                continue
            field = rel.field
            if field is via:
                continue  # the parent link just followed up from the child being deleted
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
                if not sub_objs:
                    continue
                try:
                    field.on_delete(self, field, sub_objs, self.using)
                except ProtectedError as exc:
                    # Keep collecting: the error names every protecting key at the end.
                    self.protected.append((field, list(exc.protected_objects)))

    def _collect_parents(self, model: type[Model], objs: list[Model]) -> None:
        """Multi-table inheritance: a child's rows in its parents' tables are deleted with
        it (after it: the parents' buckets are moved before the child's, as Django does)."""
        from dorm.models.inheritance import parent_objects

        groups: dict[type[Model], list[Model]] = {}
        for obj in objs:
            for parent_obj in parent_objects(obj):
                groups.setdefault(type(parent_obj), []).append(parent_obj)
        order = list(self.data)
        position = order.index(model)
        for parent in reversed(list(groups)):  # the root first
            if parent in self.data and order.index(parent) < position:
                continue
            if parent in order:
                order.remove(parent)
            order.insert(order.index(model), parent)
            position = order.index(model)
        self.data = {m: self.data.get(m, {}) for m in order}
        chain = [model._meta.concrete_model, *groups]  # the child, then its parents upwards
        for child, parent in zip(chain, chain[1:], strict=False):
            self._collect(groups[parent], via=child._meta.parents.get(parent))

    def add_field_update(self, field: Any, value: Any, objs: Iterable[Model]) -> None:
        self.field_updates.append((field, value, list(objs)))

    def add_restricted(self, field: Any, objs: Iterable[Model]) -> None:
        self.restricted.append((field, list(objs)))

    def _check_restricted(self) -> None:
        """Raise RestrictedError naming every restricted foreign key whose referencing
        objects are not deleted by the same cascade."""
        keys: dict[str, None] = {}
        targets: dict[str, None] = {}
        blocking: list[Model] = []
        for field, objs in self.restricted:
            bucket = self.data.get(type(objs[0]), {}) if objs else {}
            kept = [o for o in objs if o.pk not in bucket]
            if kept:
                keys[f"'{field.model.__name__}.{field.name}'"] = None
                targets[repr(field.related_model.__name__)] = None
                blocking.extend(kept)
        if blocking:
            raise RestrictedError(
                f"Cannot delete some instances of model {', '.join(targets)} because they are "
                f"referenced through restricted foreign keys: {', '.join(keys)}.",
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
            attnames = [pk.attname]
            if model._meta.parents:
                attnames += [p._meta.pk.attname for p in model._meta.get_parent_list()]  # type: ignore[union-attr]
            for obj in objs.values():
                for attname in attnames:
                    obj.__dict__[attname] = None
                obj._state.adding = True
        return sum(counts.values()), counts
