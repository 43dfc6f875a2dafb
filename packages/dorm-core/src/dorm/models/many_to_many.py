"""ManyToManyField: the automatic or ``through=`` table, its descriptors and managers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dorm import signals, transaction
from dorm.exceptions import FieldError
from dorm.models.base import instance_db
from dorm.models.fields import NOT_PROVIDED, Field
from dorm.models.related import (
    CASCADE,
    ForeignKey,
    ManyToManyRel,
    _bound_manager,
    _related_manager_base,
    _resolve,
    prefetched_queryset,
)
from dorm.models.twins import AsyncRelatedManagerMixin
from dorm.sql.datastructures import PathInfo

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.models.base import Model
    from dorm.models.query import QuerySet

__all__ = ["ManyRelatedManager", "ManyToManyDescriptor", "ManyToManyField"]


class ManyToManyField(Field):
    """A many-to-many relation through an automatic (or ``through=``) table."""

    is_relation = True
    many_to_many = True
    one_to_one = False

    def __init__(
        self,
        to: Any,
        related_name: str | None = None,
        related_query_name: str | None = None,
        through: Any = None,
        db_table: str | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("null"):
            raise ValueError("ManyToManyField does not take null=True (it has no column)")
        kwargs.setdefault("blank", False)
        super().__init__(**kwargs)
        self.to = to
        self.through = through
        self.db_table = db_table
        self.related_model: Any = None
        self.remote_field = ManyToManyRel(self, None, related_name, related_query_name)
        self.concrete = False

    def contribute_to_class(self, cls: type[Model], name: str) -> None:
        self.set_attributes_from_name(name)
        self.model = cls
        self.column = ""
        cls._meta.add_field(self)
        setattr(cls, name, ManyToManyDescriptor(self, reverse=False))
        if cls._meta.abstract:
            return
        _resolve(cls, self.to, self._set_target)

    def _set_target(self, model: type[Model]) -> None:
        self.related_model = model
        self.remote_field.model = model
        if self.through is None:
            self.through = _create_through(self)
            self._through_ready()
        else:
            _resolve(self.model, self.through, self._set_through)
        rel = self.remote_field
        if not rel.is_hidden():
            setattr(model, rel.get_accessor_name(), ManyToManyDescriptor(self, reverse=True))
        model._meta.add_related_object(rel)

    def _set_through(self, through: type[Model]) -> None:
        self.through = through
        self._through_ready()

    def _through_ready(self) -> None:
        through = self.through
        fks = [f for f in through._meta.concrete_fields if f.is_relation]
        source = [f for f in fks if f.related_model is self.model]
        target = [f for f in fks if f.related_model is self.related_model]
        if self.model is self.related_model:
            if len(source) < 2:
                raise FieldError(
                    f"{through.__name__} needs two foreign keys to {self.model.__name__}"
                )
            self.m2m_source, self.m2m_target = source[0], source[1]
        else:
            if not source or not target:
                raise FieldError(
                    f"through model {through.__name__} must have foreign keys to both "
                    f"{self.model.__name__} and {self.related_model.__name__}"
                )
            self.m2m_source, self.m2m_target = source[0], target[0]

    def _through_fields(self) -> tuple[ForeignKey, ForeignKey]:
        if isinstance(self.through, str) or self.through is None:
            raise FieldError(f"{self.model.__name__}.{self.name}: the through model is not ready")
        return self.m2m_source, self.m2m_target

    def get_path_info(self) -> list[PathInfo]:
        source, target = self._through_fields()
        topts = self.through._meta
        return [
            PathInfo(
                self.model._meta,
                topts,
                (topts.pk,),
                self,
                ((source.target_field.column, source.column),),
                True,
                False,
                True,
            ),
            PathInfo(
                topts,
                self.related_model._meta,
                (target.target_field,),
                target,
                ((target.column, target.target_field.column),),
                False,
                True,
                True,
            ),
        ]

    def get_reverse_path_info(self) -> list[PathInfo]:
        source, target = self._through_fields()
        topts = self.through._meta
        return [
            PathInfo(
                self.related_model._meta,
                topts,
                (topts.pk,),
                self.remote_field,
                ((target.target_field.column, target.column),),
                True,
                False,
                True,
            ),
            PathInfo(
                topts,
                self.model._meta,
                (source.target_field,),
                source,
                ((source.column, source.target_field.column),),
                False,
                True,
                True,
            ),
        ]

    def db_type(self, connection: BaseDatabaseWrapper) -> str:
        return ""

    def get_default(self) -> Any:
        return NOT_PROVIDED

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("blank", None)
        kwargs["to"] = self.to if isinstance(self.to, str) else self.to._meta.label
        if self.remote_field.related_name:
            kwargs["related_name"] = self.remote_field.related_name
        through = self.through
        if isinstance(through, str):
            kwargs["through"] = through
        elif through is not None and not through._meta.auto_created:
            kwargs["through"] = through._meta.label
        if self.db_table:
            kwargs["db_table"] = self.db_table
        return name, path, args, kwargs


def _create_through(field: ManyToManyField) -> type[Model]:
    """Build the automatic ``<model>_<field>`` table model with two foreign keys."""
    from dorm.models.base import Model

    model = field.model
    to = field.related_model
    from_name = model._meta.model_name
    to_name = to._meta.model_name
    if from_name == to_name:
        from_name, to_name = f"from_{from_name}", f"to_{to_name}"
    table = field.db_table or f"{model._meta.db_table}_{field.name}"
    meta = type(
        "Meta",
        (),
        {
            "db_table": table,
            "app_label": model._meta.app_label,
            "apps": model._meta.apps,
            "auto_created": model,
            "unique_together": [(from_name, to_name)],
        },
    )
    attrs = {
        "Meta": meta,
        "__module__": model.__module__,
        from_name: ForeignKey(model, on_delete=CASCADE, related_name=f"{table}+"),
        to_name: ForeignKey(to, on_delete=CASCADE, related_name=f"{table}+"),
    }
    name = f"{model._meta.object_name}_{field.name}"
    return type(name, (Model,), attrs)


class ManyToManyDescriptor:
    def __init__(self, field: ManyToManyField, reverse: bool) -> None:
        self.field = field
        self.reverse = reverse
        self._manager_class: type[ManyRelatedManager] | None = None

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        # Made on every ``book.tags`` access. What every manager of this side shares is
        # held by a class made once per side (a through model named by a string may be
        # resolved later: the class is remade then); an instance sets three attributes.
        cls = self._manager_class
        if cls is None or cls.through is not self.field.through:
            cls = self._manager_class = type(
                ManyRelatedManager.__name__,
                (ManyRelatedManager,),
                {"__module__": __name__, **_side(self.field, self.reverse)},
            )
        values = instance.__dict__
        if values.get(instance._meta.pk.attname) is None:
            raise _unsaved(instance, cls.name)
        return _bound_manager(cls, instance, values)

    def __set__(self, instance: Any, value: Any) -> None:
        name = self.field.remote_field.get_accessor_name() if self.reverse else self.field.name
        raise TypeError(
            f"direct assignment to the many-to-many set {name!r} is not allowed; "
            f"use {name}.set(...)"
        )


def _unsaved(instance: Any, name: str) -> ValueError:
    return ValueError(
        f"{type(instance).__name__} must be saved before its many-to-many {name!r} can be used"
    )


def _side(field: ManyToManyField, reverse: bool) -> dict[str, Any]:
    """The attributes of a manager of one side of ``field``, shared by all its instances."""
    source, target = field._through_fields()
    if reverse:
        model, name, query_name = field.model, field.remote_field.get_accessor_name(), field.name
        source, target = target, source
    else:
        model, name, query_name = field.related_model, field.name, field.remote_field.query_name
    return {
        "field": field,
        "reverse": reverse,
        "model": model,
        "name": name,
        "query_name": query_name,
        "through": field.through,
        "source_field": source,
        "target_field": target,
    }


class ManyRelatedManager(AsyncRelatedManagerMixin, _related_manager_base()):  # type: ignore[misc]
    """``book.tags`` / ``tag.book_set``: add, remove, set, clear over the through table."""

    field: ManyToManyField
    reverse: bool
    name: str
    query_name: str
    through: Any
    source_field: ForeignKey
    target_field: ForeignKey
    instance: Any

    def __init__(self, instance: Any, field: ManyToManyField, reverse: bool) -> None:
        # ``book.tags`` is made by ManyToManyDescriptor.__get__, as an instance of a class
        # made per side that holds _side() as class attributes; this is the same manager.
        self.__dict__.update(_side(field, reverse))
        if instance.pk is None:
            raise _unsaved(instance, self.name)
        self.instance = instance
        self._db = instance_db(instance)
        self._hints: dict[str, Any] = {}

    @property
    def _using(self) -> str:
        return self._db or "default"

    def get_queryset(self) -> QuerySet:
        instance = self.instance
        values = instance.__dict__
        cache = values.get("_prefetched_objects_cache")
        if cache is not None:
            items = cache.get(self.name)
            if items is not None:
                value = values.get(instance._meta.pk.attname)  # instance.pk
                return prefetched_queryset(self, self.query_name, value, items)
        qs: QuerySet = super().get_queryset()
        return qs.filter(**{self.query_name: self.instance.pk})

    all = get_queryset

    def _target_ids(self, objs: Iterable[Any]) -> list[Any]:
        ids: list[Any] = []
        for obj in objs:
            if isinstance(obj, self.model):
                if obj.pk is None:
                    raise ValueError(
                        f"{obj!r} is unsaved; save it before adding it to {self.name!r}"
                    )
                ids.append(obj.pk)
            elif hasattr(obj, "_meta"):
                raise TypeError(f"{self.name} takes {self.model.__name__} objects, got {obj!r}")
            else:
                ids.append(self.model._meta.pk.to_python(obj))
        return list(dict.fromkeys(ids))

    def _send(self, action: str, pk_set: set[Any] | None) -> None:
        if signals.m2m_changed.has_listeners(self.through):
            signals.m2m_changed.send(
                sender=self.through,
                instance=self.instance,
                action=action,
                reverse=self.reverse,
                model=self.model,
                pk_set=pk_set,
                using=self._using,
            )

    def add(self, *objs: Any) -> None:
        ids = self._target_ids(objs)
        if not ids:
            return
        through = self.through._base_manager.using(self._using)
        src, tgt = self.source_field.attname, self.target_field.attname
        with transaction.atomic(using=self._using, savepoint=False):
            existing = set(
                through.filter(**{src: self.instance.pk, f"{tgt}__in": ids}).values_list(
                    tgt, flat=True
                )
            )
            new = [i for i in ids if i not in existing]
            self._send("pre_add", set(new))
            through.bulk_create([self.through(**{src: self.instance.pk, tgt: i}) for i in new])
            self._send("post_add", set(new))
        self._forget_cache()

    def remove(self, *objs: Any) -> None:
        ids = self._target_ids(objs)
        if not ids:
            return
        src, tgt = self.source_field.attname, self.target_field.attname
        with transaction.atomic(using=self._using, savepoint=False):
            self._send("pre_remove", set(ids))
            self.through._base_manager.using(self._using).filter(
                **{src: self.instance.pk, f"{tgt}__in": ids}
            )._raw_delete(self._using)
            self._send("post_remove", set(ids))
        self._forget_cache()

    def clear(self) -> None:
        src = self.source_field.attname
        with transaction.atomic(using=self._using, savepoint=False):
            self._send("pre_clear", None)
            self.through._base_manager.using(self._using).filter(
                **{src: self.instance.pk}
            )._raw_delete(self._using)
            self._send("post_clear", None)
        self._forget_cache()

    def set(self, objs: Iterable[Any], clear: bool = False) -> None:
        objs = list(objs)
        with transaction.atomic(using=self._using, savepoint=False):
            if clear:
                self.clear()
                self.add(*objs)
                return
            wanted = self._target_ids(objs)
            src, tgt = self.source_field.attname, self.target_field.attname
            current = set(
                self.through._base_manager.using(self._using)
                .filter(**{src: self.instance.pk})
                .values_list(tgt, flat=True)
            )
            stale = [i for i in current if i not in set(wanted)]
            if stale:
                self.remove(*stale)
            self.add(*[i for i in wanted if i not in current])

    def create(self, **kwargs: Any) -> Any:
        obj = self.model._default_manager.db_manager(self._db).create(**kwargs)
        self.add(obj)
        return obj

    def get_or_create(self, defaults: Any = None, **kwargs: Any) -> tuple[Any, bool]:
        """Find the object among the related ones, or create it and link it (as in Django,
        an equal object outside the relation is not looked at)."""
        db = self._db or self.model._default_manager.db
        with transaction.atomic(using=db):
            obj, created = self.get_queryset().get_or_create(defaults, **kwargs)
            if created:
                self.add(obj)
        return obj, created

    def _forget_cache(self) -> None:
        cache = getattr(self.instance, "_prefetched_objects_cache", None)
        if cache:
            cache.pop(self.name, None)
