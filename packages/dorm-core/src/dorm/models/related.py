"""Relations: ForeignKey and OneToOneField, reverse relations, descriptors, on_delete.

ManyToManyField lives in ``dorm.models.many_to_many`` and is re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from dorm import transaction
from dorm.exceptions import FieldError
from dorm.models.base import LOADED_CACHE, LOADED_FROM, instance_db
from dorm.models.fields import Field
from dorm.models.manager import _default_queryset
from dorm.models.twins import AsyncRelatedManagerMixin
from dorm.sql.datastructures import PathInfo

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.models.base import Model
    from dorm.models.query import QuerySet

__all__ = [
    "ForeignKey",
    "ForeignObjectRel",
    "ManyToManyField",
    "ManyToManyRel",
    "ManyToOneRel",
    "OneToOneField",
    "OneToOneRel",
]

RECURSIVE = "self"


def _resolve(cls: type[Model], to: Any, callback: Callable[[type[Model]], None]) -> None:
    if isinstance(to, str):
        if to == RECURSIVE:
            callback(cls)
            return
        if "." in to:
            app_label, name = to.split(".", 1)
        else:
            app_label, name = cls._meta.app_label, to
        cls._meta.apps.lazy(app_label, name, callback)
        return
    callback(to)


class ForeignObjectRel:
    """The reverse side of a relation, as seen from the related model (for queries)."""

    is_relation = True
    concrete = False
    many_to_many = False
    one_to_one = False
    auto_created = True
    null = True
    primary_key = False

    def __init__(
        self, field: Any, to: Any, related_name: str | None, related_query_name: str | None
    ):
        self.field = field
        self.model = to  # the related model once resolved
        self.related_name = related_name
        self.related_query_name = related_query_name

    @property
    def related_model(self) -> type[Model]:
        return self.field.model  # type: ignore[no-any-return]

    @property
    def name(self) -> str:
        return self.query_name

    @property
    def query_name(self) -> str:
        return (
            self.related_query_name
            or self.related_name
            or self.field.model._meta.default_related_name
            or self.field.model._meta.model_name
        )

    def get_accessor_name(self) -> str:
        if self.related_name:
            return self.related_name
        default = self.field.model._meta.default_related_name
        if default:
            return str(default)
        name = self.field.model._meta.model_name
        return name if self.one_to_one else f"{name}_set"

    def is_hidden(self) -> bool:
        return self.related_name is not None and self.related_name.endswith("+")

    @property
    def output_field(self) -> Any:
        return self.field.model._meta.pk

    def get_lookup(self, name: str) -> type | None:
        found: type | None = self.output_field.get_lookup(name)
        return found

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.field.model._meta.label}.{self.field.name}>"


class ManyToOneRel(ForeignObjectRel):
    def get_path_info(self) -> list[PathInfo]:
        fk = self.field
        opts = fk.model._meta
        return [
            PathInfo(
                from_opts=fk.related_model._meta,
                to_opts=opts,
                target_fields=(opts.pk,),
                join_field=self,
                join_cols=((fk.target_field.column, fk.column),),
                m2m=not self.one_to_one,
                direct=False,
                nullable=True,
            )
        ]


class OneToOneRel(ManyToOneRel):
    one_to_one = True


class ManyToManyRel(ForeignObjectRel):
    many_to_many = True

    def get_path_info(self) -> list[PathInfo]:
        return self.field.get_reverse_path_info()  # type: ignore[no-any-return]


# -- on_delete -----------------------------------------------------------------------------------


def CASCADE(collector: Any, field: Any, sub_objs: Any, using: str) -> None:
    collector.collect(sub_objs, source=field.model, nullable=field.null)


def PROTECT(collector: Any, field: Any, sub_objs: Any, using: str) -> None:
    from dorm.exceptions import ProtectedError

    objs = list(sub_objs)
    raise ProtectedError(
        f"cannot delete {field.related_model.__name__}: {len(objs)} "
        f"{field.model.__name__} object(s) reference it through the protected foreign key "
        f"{field.model.__name__}.{field.name}",
        objs,
    )


def RESTRICT(collector: Any, field: Any, sub_objs: Any, using: str) -> None:
    collector.add_restricted(field, sub_objs)


def SET_NULL(collector: Any, field: Any, sub_objs: Any, using: str) -> None:
    collector.add_field_update(field, None, sub_objs)


def SET_DEFAULT(collector: Any, field: Any, sub_objs: Any, using: str) -> None:
    collector.add_field_update(field, field.get_default(), sub_objs)


def SET(value: Any) -> Callable[..., None]:
    def set_on_delete(collector: Any, field: Any, sub_objs: Any, using: str) -> None:
        collector.add_field_update(field, value() if callable(value) else value, sub_objs)

    set_on_delete.deconstruct = lambda: ("dorm.SET", (value,), {})  # type: ignore[attr-defined]
    return set_on_delete


def DO_NOTHING(collector: Any, field: Any, sub_objs: Any, using: str) -> None:
    pass


# -- ForeignKey ------------------------------------------------------------------------------------


class ForwardManyToOneDescriptor:
    """``book.author``: loads (and caches) the related object by ``author_id``."""

    def __init__(self, field: ForeignKey) -> None:
        self.field = field

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        field = self.field
        cache = instance._state.fields_cache
        try:
            return cache[field.name]
        except KeyError:
            pass
        value = instance.__dict__.get(field.attname)
        if value is None:
            related = None
        else:
            model = field.related_model
            qs = model._base_manager.db_manager(instance._state.db).get_queryset()
            try:
                related = qs.get(**{field.target_field.attname: value})
            except model.DoesNotExist:
                raise model.DoesNotExist(
                    f"{type(instance).__name__}.{field.name}: no {model.__name__} with "
                    f"{field.target_field.attname}={field._display(value)}"
                ) from None
            if field.one_to_one:
                # The loaded object points back here: ``profile.user.profile`` is ``profile``.
                related._state.fields_cache[field.remote_field.get_accessor_name()] = instance
        cache[field.name] = related
        return related

    def __set__(self, instance: Any, value: Any) -> None:
        field = self.field
        if value is not None and not isinstance(value, field.related_model):
            raise ValueError(
                f"cannot assign {value!r}: {type(instance).__name__}.{field.name} must be a "
                f"{field.related_model.__name__} instance"
            )
        # None is accepted on a non-null key, as Django does since 1.10: full_clean() or the
        # database's NOT NULL reports it when the instance is validated or saved.
        instance.__dict__[field.attname] = (
            None if value is None else getattr(value, field.target_field.attname)
        )
        instance._state.fields_cache[field.name] = value
        if value is not None and field.one_to_one:
            value._state.fields_cache[field.remote_field.get_accessor_name()] = instance


class ForeignKeyIdDescriptor:
    """``book.author_id``: assigning it drops a cached ``book.author`` that no longer matches."""

    def __init__(self, field: ForeignKey) -> None:
        self.field = field

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        attname = self.field.attname
        if attname not in instance.__dict__:
            instance.refresh_from_db(fields=[attname])
        return instance.__dict__[attname]

    def __set__(self, instance: Any, value: Any) -> None:
        field = self.field
        instance.__dict__[field.attname] = value
        if LOADED_CACHE in instance.__dict__:
            instance._state  # noqa: B018 - takes over a prefetch's pending relation cache
        cached = instance.__dict__.get("_state")
        if cached is not None:
            obj = cached.fields_cache.get(field.name)
            if obj is not None and getattr(obj, field.target_field.attname) != value:
                del cached.fields_cache[field.name]


class ForeignKey(Field):
    """A many-to-one relation: ``author = dorm.ForeignKey(Author, on_delete=dorm.CASCADE)``."""

    is_relation = True
    one_to_one = False
    rel_class: type[ForeignObjectRel] = ManyToOneRel

    def __init__(
        self,
        to: Any,
        on_delete: Callable[..., None],
        related_name: str | None = None,
        related_query_name: str | None = None,
        to_field: str | None = None,
        db_constraint: bool = True,
        parent_link: bool = False,
        auto_created: bool = False,
        **kwargs: Any,
    ) -> None:
        if not callable(on_delete):
            raise TypeError(
                "ForeignKey needs on_delete=dorm.CASCADE / PROTECT / SET_NULL / SET_DEFAULT / "
                "DO_NOTHING / RESTRICT"
            )
        if not isinstance(to, str) and not hasattr(to, "_meta"):
            raise TypeError(f"ForeignKey(to=...) must be a model or 'app.Model', got {to!r}")
        kwargs.setdefault("db_index", True)
        super().__init__(**kwargs)
        if on_delete is SET_NULL and not self.null:
            raise ValueError("on_delete=SET_NULL needs null=True")
        if on_delete is SET_DEFAULT and not self.has_default():
            raise ValueError("on_delete=SET_DEFAULT needs a default")
        self.to = to
        self.on_delete = on_delete
        self.to_field = to_field
        self.db_constraint = db_constraint
        # The link of a multi-table inheritance child to its parent's row (Django's
        # parent_link): set on the ``<parent>_ptr`` field a child gets, or given explicitly.
        self.parent_link = parent_link
        self.auto_created = auto_created
        self.related_model: Any = None
        self.remote_field = self.rel_class(self, None, related_name, related_query_name)

    def get_attname(self) -> str:
        return f"{self.name}_id"

    def contribute_to_class(self, cls: type[Model], name: str) -> None:
        super().contribute_to_class(cls, name)
        setattr(cls, self.name, ForwardManyToOneDescriptor(self))
        setattr(cls, self.attname, ForeignKeyIdDescriptor(self))
        if cls._meta.abstract:
            return
        _resolve(cls, self.to, self._set_target)

    def _set_target(self, model: type[Model]) -> None:
        self.related_model = model
        self.remote_field.model = model
        rel = self.remote_field
        if not rel.is_hidden():
            accessor = rel.get_accessor_name()
            descriptor = (
                ReverseOneToOneDescriptor(rel)
                if self.one_to_one
                else ReverseManyToOneDescriptor(rel)
            )
            setattr(model, accessor, descriptor)
        model._meta.add_related_object(rel)

    @property
    def target_field(self) -> Field:
        if self.related_model is None:
            raise FieldError(
                f"{self.model.__name__}.{self.name}: the related model {self.to!r} is not defined"
            )
        opts = self.related_model._meta
        field: Field = opts.get_field(self.to_field) if self.to_field else opts.pk
        return field

    @property
    def foreign_related_fields(self) -> tuple[Field, ...]:
        return (self.target_field,)

    def get_path_info(self) -> list[PathInfo]:
        target = self.target_field
        return [
            PathInfo(
                from_opts=self.model._meta,
                to_opts=self.related_model._meta,
                target_fields=(target,),
                join_field=self,
                join_cols=((self.column, target.column),),
                m2m=False,
                direct=True,
                nullable=self.null,
            )
        ]

    def get_internal_type(self) -> str:
        return "ForeignKey"

    def db_type(self, connection: BaseDatabaseWrapper) -> str:
        return self.target_field.rel_db_type(connection)

    def db_parameters(self) -> dict[str, Any]:
        return self.target_field.db_parameters()

    def to_python(self, value: Any) -> Any:
        if hasattr(value, "_meta"):
            value = value.pk
        return self.target_field.to_python(value)

    def get_prep_value(self, value: Any) -> Any:
        if hasattr(value, "_meta"):
            value = value.pk
        return self.target_field.get_prep_value(value)

    def get_db_prep_value(self, value: Any) -> Any:
        if hasattr(value, "_meta"):
            value = value.pk
        return self.target_field.get_db_prep_value(value)

    def _identity_types(self) -> tuple[type, ...]:
        if type(self).get_db_prep_value is not ForeignKey.get_db_prep_value:
            return ()
        return self.target_field._identity_types()

    def get_lookup(self, name: str) -> type | None:
        return self.target_field.get_lookup(name)

    def get_transform(self, name: str) -> type | None:
        return self.target_field.get_transform(name)

    @property
    def sensitive(self) -> bool:
        return self.pii

    def validate(self, value: Any, model_instance: Model | None) -> None:
        super().validate(value, model_instance)
        if value is None:
            return
        qs = self.related_model._base_manager.filter(**{self.target_field.attname: value})
        if not qs.exists():
            raise _invalid_fk(self, value)

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        if self.db_index:
            kwargs.pop("db_index", None)
        else:
            kwargs["db_index"] = False
        to = self.to if isinstance(self.to, str) else self.to._meta.label
        if (
            to != RECURSIVE
            and isinstance(self.to, str)
            and "." not in to
            and self.model is not None
        ):
            to = f"{self.model._meta.app_label}.{to}"
        kwargs["to"] = to
        kwargs["on_delete"] = self.on_delete
        if self.remote_field.related_name:
            kwargs["related_name"] = self.remote_field.related_name
        if self.remote_field.related_query_name:
            kwargs["related_query_name"] = self.remote_field.related_query_name
        if self.to_field:
            kwargs["to_field"] = self.to_field
        if not self.db_constraint:
            kwargs["db_constraint"] = False
        if self.parent_link:
            kwargs["parent_link"] = True
        if self.auto_created:
            kwargs["auto_created"] = True
        return name, path, args, kwargs


def _invalid_fk(field: ForeignKey, value: Any) -> Exception:
    from dorm.exceptions import ValidationError

    return ValidationError(
        f"{field.name}: {field.related_model.__name__} with "
        f"{field.target_field.attname}={field._display(value)} does not exist"
    )


class OneToOneField(ForeignKey):
    """A one-to-one relation: a unique ForeignKey whose reverse side is a single object."""

    one_to_one = True
    rel_class = OneToOneRel

    def __init__(self, to: Any, on_delete: Callable[..., None], **kwargs: Any) -> None:
        kwargs["unique"] = True
        super().__init__(to, on_delete, **kwargs)

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("unique", None)
        return name, path, args, kwargs


class ReverseOneToOneDescriptor:
    """``user.profile``: the object whose OneToOneField points here (DoesNotExist if none)."""

    def __init__(self, rel: OneToOneRel) -> None:
        self.rel = rel

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        rel = self.rel
        accessor = rel.get_accessor_name()
        cache = instance._state.fields_cache
        if accessor in cache:
            found = cache[accessor]
        else:
            field = rel.field
            value = getattr(instance, field.target_field.attname)
            found = None
            if value is not None:
                found = (
                    field.model._base_manager.db_manager(instance._state.db)
                    .filter(**{field.attname: value})
                    .first()
                )
                if found is not None:
                    found._state.fields_cache[field.name] = instance
            cache[accessor] = found
        if found is None:
            # Also an AttributeError, as in Django, so hasattr(user, "profile") is False.
            missing = type(
                "RelatedObjectDoesNotExist", (rel.related_model.DoesNotExist, AttributeError), {}
            )
            raise missing(f"{type(instance).__name__} has no {accessor}")
        return found

    def __set__(self, instance: Any, value: Any) -> None:
        if value is None:
            raise ValueError(
                f"cannot assign None to the reverse one-to-one {self.rel.get_accessor_name()!r}"
            )
        setattr(value, self.rel.field.name, instance)
        instance._state.fields_cache[self.rel.get_accessor_name()] = value


class ReverseManyToOneDescriptor:
    """``author.book_set``: a manager of the objects pointing here."""

    def __init__(self, rel: ManyToOneRel) -> None:
        self.rel = rel
        self._manager_class: type[RelatedManager] | None = None

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        # Made on every ``author.books`` access: what every manager of this relation shares
        # is held by a class made once; an instance sets three attributes.
        cls = self._manager_class
        if cls is None:
            cls = self._manager_class = type(
                RelatedManager.__name__,
                (RelatedManager,),
                {"__module__": __name__, **_relation(self.rel)},
            )
        return _bound_manager(cls, instance, instance.__dict__)

    def __set__(self, instance: Any, value: Any) -> None:
        raise TypeError(
            f"direct assignment to the reverse side of a related set is not allowed; use "
            f"{self.rel.get_accessor_name()}.set(...)"
        )


def _relation(rel: ManyToOneRel) -> dict[str, Any]:
    """The attributes of a manager of ``rel``, shared by all its instances."""
    return {
        "rel": rel,
        "field": rel.field,
        "model": rel.field.model,
        "name": rel.get_accessor_name(),
    }


def _related_manager_base() -> type:
    from dorm.models.manager import Manager

    return Manager


#: Makes a related manager without BaseManager.__new__, which records constructor
#: arguments for migrations: a manager made per attribute access has no use for them.
_new_manager = object.__new__


def _bound_manager(cls: type, instance: Any, values: dict[str, Any]) -> Any:
    """A manager of the per-relation class ``cls`` for ``instance`` (whose ``__dict__`` is
    ``values``), made without ``__init__``: its alias read without building a lazy
    ModelState."""
    state = values.get("_state")
    manager: Any = _new_manager(cls)
    manager.instance = instance
    manager._db = state.db if state is not None else values.get(LOADED_FROM)
    manager._hints = {}
    return manager


def prefetched_queryset(manager: Any, lookup: str, value: Any, items: list[Any]) -> QuerySet:
    """The queryset of a related manager whose objects were prefetched: ``items`` is its
    result (the prefetch cache's list, shared: neither side changes it) and
    ``lookup=value`` its filter, built only if the queryset is refined
    (``qs.filter(...)``, ``qs.query``)."""
    qs: QuerySet = (manager._queryset_class or _default_queryset[0])(
        manager.model, None, manager._db, manager._hints
    )
    qs._deferred_filter = {lookup: value}
    qs._result_cache = items
    qs._prefetch_done = True
    return qs


class RelatedManager(AsyncRelatedManagerMixin, _related_manager_base()):  # type: ignore[misc]
    """The objects of ``rel.field.model`` whose foreign key points at ``instance``."""

    rel: ManyToOneRel
    field: ForeignKey
    name: str
    instance: Any

    def __init__(self, instance: Any, rel: ManyToOneRel) -> None:
        # ``author.books`` is made by ReverseManyToOneDescriptor.__get__, as an instance of
        # a class made per relation that holds _relation() as class attributes; this is
        # the same manager.
        self.__dict__.update(_relation(rel))
        self.instance = instance
        self._db = instance_db(instance)
        self._hints: dict[str, Any] = {}

    def _check_saved(self) -> Any:
        value = getattr(self.instance, self.field.target_field.attname)
        if value is None:
            raise ValueError(
                f"{type(self.instance).__name__} must be saved before its "
                f"{self.name!r} relation can be used"
            )
        return value

    def get_queryset(self) -> QuerySet:
        value = self._check_saved()
        cache = self.instance.__dict__.get("_prefetched_objects_cache")
        if cache is not None:
            items = cache.get(self.name)
            if items is not None:
                return prefetched_queryset(self, self.field.name, value, items)
        qs: QuerySet = super().get_queryset()
        return qs.filter(**{self.field.name: value})

    all = get_queryset

    def _forget_cache(self) -> None:
        """Drop a prefetched list of this relation: it no longer matches the database."""
        cache = getattr(self.instance, "_prefetched_objects_cache", None)
        if cache:
            cache.pop(self.name, None)

    def create(self, **kwargs: Any) -> Any:
        self._check_saved()
        self._forget_cache()
        kwargs[self.field.name] = self.instance
        return self.model._default_manager.db_manager(self._db).create(**kwargs)

    def get_or_create(self, defaults: Any = None, **kwargs: Any) -> Any:
        self._check_saved()
        self._forget_cache()
        kwargs[self.field.name] = self.instance
        return self.model._default_manager.db_manager(self._db).get_or_create(defaults, **kwargs)

    def add(self, *objs: Any, bulk: bool = True) -> None:
        self._check_saved()
        for obj in objs:
            if not isinstance(obj, self.model):
                raise TypeError(
                    f"{self.name}.add() takes {self.model.__name__} objects, got {obj!r}"
                )
        self._forget_cache()
        with transaction.atomic(using=self._db or "default", savepoint=False):
            for obj in objs:
                setattr(obj, self.field.name, self.instance)
                obj.save(using=self._db)

    def remove(self, *objs: Any) -> None:
        if not self.field.null:
            raise AttributeError(
                f"{self.name}.remove() needs {self.model.__name__}.{self.field.name} to allow null"
            )
        pks = [o.pk for o in objs]
        self._forget_cache()
        self.get_queryset().filter(pk__in=pks).update(**{self.field.name: None})
        for obj in objs:
            obj.__dict__[self.field.attname] = None
            obj._state.fields_cache.pop(self.field.name, None)

    def clear(self) -> None:
        if not self.field.null:
            raise AttributeError(
                f"{self.name}.clear() needs {self.model.__name__}.{self.field.name} to allow null"
            )
        self._forget_cache()
        self.get_queryset().update(**{self.field.name: None})

    def set(self, objs: Iterable[Any]) -> None:
        objs = list(objs)
        with transaction.atomic(using=self._db or "default", savepoint=False):
            keep = {o.pk for o in objs if o.pk is not None}
            if self.field.null:
                self.get_queryset().exclude(pk__in=keep).update(**{self.field.name: None})
            self.add(*objs)


from dorm.models.many_to_many import ManyToManyField  # noqa: E402  (it builds on ForeignKey)
