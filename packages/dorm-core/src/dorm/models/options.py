"""``Model._meta``: table name, fields, primary key, ordering, relations of one model."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from dorm.apps import apps as global_apps
from dorm.exceptions import FieldDoesNotExist, FieldError, ImproperlyConfigured, did_you_mean

if TYPE_CHECKING:
    from dorm.apps import Apps
    from dorm.models.base import Model
    from dorm.models.constraints import BaseConstraint, Index
    from dorm.models.fields import Field
    from dorm.models.related import ForeignObjectRel

__all__ = ["DEFAULT_PERMISSIONS", "Options"]

DEFAULT_PERMISSIONS = ("add", "change", "delete", "view")

_META_ATTRS = frozenset(
    {
        "db_table",
        "ordering",
        "unique_together",
        "indexes",
        "constraints",
        "abstract",
        "app_label",
        "apps",
        "verbose_name",
        "verbose_name_plural",
        "get_latest_by",
        "default_related_name",
        "managed",
        "auto_created",
        "permissions",
        "default_permissions",
        "default_manager_name",
        "base_manager_name",
        "db_table_comment",
        "proxy",
    }
)


def _normalize_together(value: Any, model_name: str) -> list[tuple[str, ...]]:
    if not value:
        return []
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
        value = [value]
    result = []
    for group in value:
        if isinstance(group, str) or not all(isinstance(n, str) for n in group):
            raise ImproperlyConfigured(
                f"{model_name}.Meta.unique_together must be a list of field-name tuples, "
                f"got {value!r}"
            )
        result.append(tuple(group))
    return result


class Options:
    """The metadata of one model class, built from its ``Meta``."""

    def __init__(self, meta: Any, app_label: str, model_name: str) -> None:
        declared: dict[str, Any] = {}
        if meta is not None:
            # Meta classes may inherit (an abstract parent's Meta): read the whole chain.
            for klass in reversed(meta.__mro__[:-1]):
                declared.update({k: v for k, v in vars(klass).items() if not k.startswith("_")})
        unknown = sorted(set(declared) - _META_ATTRS)
        if unknown:
            raise ImproperlyConfigured(
                f"{model_name}.Meta has unknown option(s) {', '.join(map(repr, unknown))}; "
                f"known options: {', '.join(sorted(_META_ATTRS))}"
            )
        self.model: type[Model] = None  # type: ignore[assignment]
        self.object_name = model_name
        self.model_name = model_name.lower()
        self.app_label = declared.get("app_label") or app_label
        # The registry the model joins and resolves string relations in (Django's
        # Meta.apps): migrations build historical models in a private Apps().
        self.apps: Apps = declared.get("apps") or global_apps
        self.abstract = bool(declared.get("abstract", False))
        self.db_table: str = declared.get("db_table") or f"{self.app_label}_{self.model_name}"
        self.ordering: list[Any] = list(declared.get("ordering") or [])
        self.unique_together = _normalize_together(declared.get("unique_together"), model_name)
        self.indexes: list[Index] = list(declared.get("indexes") or [])
        self.constraints: list[BaseConstraint] = list(declared.get("constraints") or [])
        self.verbose_name = declared.get("verbose_name") or model_name.lower()
        self.verbose_name_plural = declared.get("verbose_name_plural") or f"{self.verbose_name}s"
        self.get_latest_by = declared.get("get_latest_by")
        self.default_related_name = declared.get("default_related_name")
        self.managed = bool(declared.get("managed", True))
        # Kept for Django compatibility and followed by migrations (AlterModelOptions).
        self.permissions: list[tuple[str, str]] = [
            tuple(p) for p in declared.get("permissions") or []
        ]
        self.default_permissions: tuple[str, ...] = tuple(
            declared.get("default_permissions", DEFAULT_PERMISSIONS)
        )
        # The manager ``_default_manager`` / ``_base_manager`` return (Django's Meta options).
        self.default_manager_name: str | None = declared.get("default_manager_name")
        self.base_manager_name: str | None = declared.get("base_manager_name")
        # A proxy model (Meta.proxy): the table, fields and reverse relations of
        # ``concrete_model``, its own managers, ordering and methods (dorm.models.proxy).
        self.proxy = bool(declared.get("proxy", False))
        self.concrete_model: Any = None
        # Multi-table inheritance: each concrete parent model -> the OneToOneField
        # (parent_link=True) that joins this table to its table. Empty for most models,
        # and every extra step of reads and writes is behind that one check
        # (dorm.models.inheritance).
        self.parents: dict[type[Model], Field] = {}
        self.db_table_comment: str | None = declared.get("db_table_comment")
        if self.db_table_comment is not None and not isinstance(self.db_table_comment, str):
            raise ImproperlyConfigured(
                f"{model_name}.Meta.db_table_comment must be a string, "
                f"got {self.db_table_comment!r}"
            )
        # Fields that every QuerySet.update() sets when the call does not: name -> a
        # factory of the value or expression. Empty unless a plugin fills it from the
        # dorm_class_prepared hook (dorm-saga bumps an optimistic-lock ``version``).
        self.update_defaults: dict[str, Callable[[], Any]] = {}
        self.auto_created = declared.get("auto_created", False)
        self.local_fields: list[Field] = []
        self.local_many_to_many: list[Field] = []
        self.related_objects: list[ForeignObjectRel] = []
        self.pk: Field | None = None
        self.managers: list[Any] = []
        self.meta = meta

    def __repr__(self) -> str:
        return f"<Options for {self.object_name}>"

    @property
    def label(self) -> str:
        return f"{self.app_label}.{self.object_name}"

    @property
    def label_lower(self) -> str:
        return f"{self.app_label}.{self.model_name}"

    def add_field(self, field: Field) -> None:
        target = self.local_many_to_many if field.many_to_many else self.local_fields
        bisect.insort(target, field)
        if field.primary_key:
            if self.pk is not None and self.pk is not field:
                raise ImproperlyConfigured(
                    f"{self.object_name} has two primary keys: {self.pk.name} and {field.name}"
                )
            self.pk = field
        self._expire_cache()

    def add_related_object(self, rel: ForeignObjectRel) -> None:
        self.related_objects.append(rel)
        self._expire_cache()

    def _expire_cache(self) -> None:
        for name in (
            "concrete_fields",
            "local_concrete_fields",
            "fields",
            "_forward_map",
            "_reverse_map",
            "init_attnames",
            "keyword_init",
            "fast_init",
            "insert_fields",
            "db_default_fields",
            "concrete_relations",
            "update_targets",
        ):
            self.__dict__.pop(name, None)
        model = self.model
        if model is not None:
            # A constructor compiled for the old fields (see base.compile_fast_init).
            installed = model.__dict__.get("__init__")
            if getattr(installed, "_dorm_fast_init", False):
                delattr(model, "__init__")
            # Children (multi-table) and proxies read this model's fields and relations.
            for sub in type.__subclasses__(model):
                sub_opts = sub.__dict__.get("_meta")
                if sub_opts is not None and sub_opts is not self:
                    sub_opts._expire_cache()

    @cached_property
    def concrete_fields(self) -> list[Field]:
        """Every column an instance carries: those of the parents' tables first (multi-table
        inheritance), then this model's own."""
        local = [f for f in self.local_fields if f.concrete]
        if not self.parents:
            return local
        inherited = [f for p in self.parents for f in p._meta.concrete_fields]
        return [*inherited, *local]

    @cached_property
    def local_concrete_fields(self) -> list[Field]:
        """The columns of this model's own table."""
        if not self.parents:
            return self.concrete_fields
        return [f for f in self.local_fields if f.concrete]

    @cached_property
    def fields(self) -> list[Field]:
        if not self.parents:
            return [*self.local_fields, *self.local_many_to_many]
        inherited = [f for p in self.parents for f in p._meta.fields]
        return [*inherited, *self.local_fields, *self.local_many_to_many]

    def get_parent_list(self) -> list[type[Model]]:
        """Every concrete ancestor, nearest first (multi-table inheritance)."""
        result: list[type[Model]] = []
        for parent in self.parents:
            result.append(parent)
            result.extend(p for p in parent._meta.get_parent_list() if p not in result)
        return result

    def get_ancestor_link(self, ancestor: type[Model]) -> Field | None:
        """The parent link of this model leading towards ``ancestor`` (None: not one)."""
        if ancestor in self.parents:
            return self.parents[ancestor]
        for parent, link in self.parents.items():
            if parent._meta.get_ancestor_link(ancestor) is not None:
                return link
        return None

    def get_path_to_parent(self, parent: type[Model]) -> list[Any]:
        """The joins from this model's table to the table of its ancestor ``parent``."""
        path: list[Any] = []
        opts = self
        while opts.model is not parent:
            link = opts.get_ancestor_link(parent)
            if link is None:
                raise FieldError(f"{parent.__name__} is not a parent of {self.object_name}")
            path.extend(link.get_path_info())  # type: ignore[attr-defined]
            opts = link.related_model._meta  # type: ignore[attr-defined]
        return path

    @cached_property
    def keyword_init(self) -> Callable[[Any, dict[str, Any]], None]:
        """``Model(**kwargs)`` for this model's fields, compiled once (see base.py)."""
        from dorm.models.base import compile_keyword_init

        return compile_keyword_init(self.concrete_fields)

    @cached_property
    def fast_init(self) -> Callable[..., None] | None:
        """``Model.__init__`` for this model's fields with keyword parameters, compiled
        once, or None when a field name cannot be a parameter (see base.py)."""
        from dorm.models.base import compile_fast_init

        return compile_fast_init(self.model, self.concrete_fields)

    @cached_property
    def insert_fields(self) -> list[Field]:
        """The columns an INSERT of a new row writes into this model's table: every
        concrete field of the table but the pk."""
        return [f for f in self.local_concrete_fields if not f.primary_key]

    @cached_property
    def db_default_fields(self) -> tuple[Field, ...]:
        """The columns of this model's table with a ``db_default`` (empty for most models:
        one check)."""
        return tuple(f for f in self.local_concrete_fields if f.has_db_default())

    @cached_property
    def concrete_relations(self) -> tuple[Field, ...]:
        """The concrete fields that are relations (foreign keys, one-to-ones): empty for
        most models, so save() skips their related-object checks in one test."""
        return tuple(f for f in self.concrete_fields if f.is_relation)

    @cached_property
    def init_attnames(self) -> tuple[str, ...]:
        return tuple(f.attname for f in self.concrete_fields)

    @cached_property
    def _forward_map(self) -> dict[str, Field]:
        mapping: dict[str, Field] = {}
        for field in self.fields:
            mapping[field.name] = field
            mapping.setdefault(field.attname, field)
        return mapping

    @cached_property
    def update_targets(self) -> dict[str, Field]:
        """``update()``'s keyword names (a field's name, its attname, or ``pk``) -> the
        column-backed field, as ``get_concrete_field()`` resolves them without error."""
        targets = {
            name: field
            for name, field in self._forward_map.items()
            if getattr(field, "concrete", False) and not field.many_to_many
        }
        if self.pk is not None:
            targets["pk"] = self.pk
        return targets

    @cached_property
    def _reverse_map(self) -> dict[str, ForeignObjectRel]:
        mapping = {rel.query_name: rel for rel in self.related_objects}
        for parent in self.parents:
            # A child is queried through its parents' reverse relations too, as in Django
            # (Restaurant.objects.filter(reviews__stars=5) for a foreign key to Place).
            for name, rel in parent._meta._reverse_map.items():
                if rel.field.model._meta.concrete_model is not self.concrete_model:
                    mapping.setdefault(name, rel)
        return mapping

    def get_field(self, name: str) -> Any:
        """Return the field (or reverse relation) called ``name``.

        :raises FieldDoesNotExist: naming the model and the valid choices.
        """
        found = self._find_field(name)
        if found is not None:
            return found
        raise FieldDoesNotExist(
            f"{self.object_name} has no field named {name!r}."
            f"{did_you_mean(name, self.field_names())} "
            f"Choices are: {', '.join(self.field_names())}"
        )

    def _find_field(self, name: str) -> Any:
        """The field (or reverse relation) called ``name``, or None: ``get_field()`` without
        the error message, for callers that expect misses (a lookup name after a relation
        in ``author__in`` is one)."""
        if name == "pk" and self.pk is not None:
            return self.pk
        found = self._forward_map.get(name)
        if found is not None:
            return found
        return self._reverse_map.get(name)

    def get_concrete_field(self, name: str, what: str) -> Any:
        """Return the column-backed field ``name``; ``what`` names the caller in the error.

        :raises FieldError: ``name`` is unknown, a reverse relation or a many-to-many field.
        """
        from dorm.exceptions import FieldError

        try:
            field = self.get_field(name)
        except FieldDoesNotExist:
            field = None
        if field is None or not getattr(field, "concrete", False) or field.many_to_many:
            raise FieldError(
                f"{self.object_name}: {what} names {name!r}, which is not a concrete field; "
                f"fields are: {', '.join(f.name for f in self.concrete_fields)}"
            )
        return field

    def field_names(self) -> list[str]:
        return sorted({*(f.name for f in self.fields), *self._reverse_map, "pk"})

    def get_fields(self, include_reverse: bool = True) -> Sequence[Any]:
        return [*self.fields, *(self.related_objects if include_reverse else [])]
