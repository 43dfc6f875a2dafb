"""``dorm.Model`` and its metaclass: fields, ``_meta``, managers, save/delete/refresh/clean."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from dorm import signals
from dorm.apps import apps
from dorm.conf import settings
from dorm.exceptions import (
    FieldDoesNotExist,
    FieldError,
    ImproperlyConfigured,
    MultipleObjectsReturned,
    ObjectDoesNotExist,
    ValidationError,
)
from dorm.models.fields import NOT_PROVIDED, BigAutoField, Field
from dorm.models.manager import Manager
from dorm.models.options import Options
from dorm.models.twins import AsyncModelMixin

__all__ = ["Model", "ModelBase", "ModelState"]


#: The instance-dict key that stands for ``_state`` on an instance loaded from a query:
#: ``{LOADED_FROM: "default"}`` means ModelState(db="default", adding=False), made on the
#: first access to ``_state`` (see _LazyState).
LOADED_FROM = "_dorm_loaded_from"
#: Beside LOADED_FROM: the relation cache a prefetch gave the row before it had a state
#: (a dict, or one ``(name, object)`` pair); it becomes the state's ``fields_cache``.
LOADED_CACHE = "_dorm_loaded_cache"


class ModelState:
    """Per-instance state: the database it came from and whether it is saved yet."""

    __slots__ = ("adding", "db", "fields_cache")

    fields_cache: dict[str, Any]

    def __init__(self, db: str | None = None, adding: bool = True) -> None:
        self.db = db
        self.adding = adding

    def __getattr__(self, name: str) -> Any:
        # fields_cache is created on first use: most loaded rows never cache a relation,
        # and skipping one dict per row is measurable when building thousands of objects.
        if name == "fields_cache":
            cache: dict[str, Any] = {}
            self.fields_cache = cache
            return cache
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getstate__(self) -> dict[str, Any]:
        return {"db": self.db, "adding": self.adding, "fields_cache": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.db = state["db"]
        self.adding = state["adding"]
        self.fields_cache = {}


class _LazyState:
    """``Model._state`` when an instance has none yet: a loaded row carries only the alias
    it came from (LOADED_FROM), a new one nothing; its ModelState is built here, once
    (``adding`` for a new instance), and then stored in the instance dict, which takes
    precedence over this non-data descriptor from then on."""

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        values = instance.__dict__
        state = ModelState.__new__(ModelState)
        if LOADED_FROM not in values:
            # A new instance (Model(...)) that had no use for its state until now.
            state.db = None
            state.adding = True
            values["_state"] = state
            return state
        state.db = values.pop(LOADED_FROM)
        state.adding = False
        cache = values.pop(LOADED_CACHE, None)
        if cache is not None:
            # A prefetch's back-reference: a (name, object) pair shared by the rows of one
            # owner, or a dict of its own.
            state.fields_cache = {cache[0]: cache[1]} if type(cache) is tuple else cache
        values["_state"] = state
        return state


def instance_db(instance: Any) -> str | None:
    """The alias ``instance`` came from (``instance._state.db``) without building the
    state of a loaded row that has none yet (related managers ask on every access)."""
    values = instance.__dict__
    state = values.get("_state")
    return state.db if state is not None else values.get(LOADED_FROM)  # type: ignore[no-any-return]


_persistence_module: Any = None


def _persistence() -> Any:
    """``dorm.models.persistence`` (it imports this module, so it is imported on first use).

    Not read from ``sys.modules``: another thread may still be executing the module there
    (the first saves of a process, all at once). The import statement waits for it, and
    the module is cached only once its import has returned.
    """
    global _persistence_module
    module = _persistence_module
    if module is None:
        from dorm.models import persistence as module

        _persistence_module = module
    return module


def _app_label(module: str) -> str:
    """The label of the installed app whose package holds ``module`` (the longest match, as
    Django picks the app config containing the module); else a guess from the module name."""
    if settings.configured:
        best = ""
        for app in settings.INSTALLED_APPS:
            if (module == app or module.startswith(app + ".")) and len(app) > len(best):
                best = app
        if best:
            return best.rsplit(".", 1)[-1]
    parts = module.split(".")
    if parts[-1] == "models" and len(parts) > 1:
        return parts[-2]
    if "models" in parts:
        i = parts.index("models")
        return parts[i - 1] if i > 0 else parts[0]
    return parts[-1] if parts[-1] != "__main__" else "main"


class ModelBase(type):
    """Builds ``_meta``, attaches fields, managers and exception classes, registers the model."""

    def __new__(
        mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any], **kwargs: Any
    ) -> Any:
        parents = [b for b in bases if isinstance(b, ModelBase)]
        if not parents:
            return super().__new__(mcs, name, bases, attrs, **kwargs)
        meta = attrs.pop("Meta", None)
        own_db_table = meta is not None and "db_table" in vars(meta)
        contributable = {k: v for k, v in attrs.items() if hasattr(v, "contribute_to_class")}
        plain = {k: v for k, v in attrs.items() if k not in contributable}
        cls: Any = super().__new__(mcs, name, bases, plain, **kwargs)

        model_parents = [p for p in parents if hasattr(p, "_meta")]
        abstract_parents = [p for p in model_parents if p._meta.abstract]
        concrete_parents = [p for p in model_parents if not p._meta.abstract]
        if meta is not None and getattr(meta, "proxy", False):
            from dorm.models.proxy import prepare_proxy

            module = attrs.get("__module__", "")
            label = getattr(meta, "app_label", None) or _app_label(module)
            return prepare_proxy(cls, meta, label, concrete_parents, contributable)
        mti_parent = None
        if concrete_parents:
            from dorm.models.inheritance import concrete_parent

            mti_parent = concrete_parent(name, concrete_parents)
        if meta is None:
            # A model without Meta inherits its abstract parent's options, abstract excepted.
            for parent in abstract_parents:
                if parent._meta.meta is not None:
                    meta = type("Meta", (parent._meta.meta,), {"abstract": False})
                    break
        elif "abstract" not in vars(meta):
            # ``class Meta(Parent.Meta)`` inherits options, never ``abstract`` (as in Django).
            meta = type("Meta", (meta,), {"abstract": False})
        module = attrs.get("__module__", "")
        app_label = getattr(meta, "app_label", None) or _app_label(module)
        if meta is not None and not own_db_table and abstract_parents:
            # db_table is never inherited: each concrete model gets its own.
            meta = type("Meta", (meta,), {"db_table": None})
        if mti_parent is not None:
            from dorm.models.inheritance import inherited_meta

            meta = inherited_meta(meta, mti_parent)
        opts = Options(meta, app_label, name)
        opts.model = cls
        opts.concrete_model = cls
        cls._meta = opts
        if mti_parent is not None and not opts.abstract:
            from dorm.models.inheritance import add_parent_link

            add_parent_link(cls, mti_parent, contributable)

        # Fields and managers of abstract parents are copied into each child.
        seen = set(contributable)
        for parent in reversed(cls.__mro__[1:]):
            popts = getattr(parent, "_meta", None)
            if popts is None or not popts.abstract:
                continue
            for field in [*popts.local_fields, *popts.local_many_to_many]:
                if field.name not in seen:
                    contributable[field.name] = copy.deepcopy(field)
                    seen.add(field.name)
            for manager in popts.managers:
                if manager.name not in seen:
                    contributable[manager.name] = copy.copy(manager)
                    seen.add(manager.name)
        ordered = sorted(
            contributable.items(),
            key=lambda kv: getattr(kv[1], "creation_counter", 0),
        )
        for attr, value in ordered:
            value.contribute_to_class(cls, attr)
        if opts.abstract:
            cls.Meta = meta  # children write Meta(Parent.Meta)
            return cls
        if opts.pk is None:
            auto = BigAutoField(verbose_name="ID")
            auto.auto_created = True
            auto.creation_counter = -1
            auto.contribute_to_class(cls, "id")
        if not opts.managers and mti_parent is not None:
            # As in Django, a child inherits its parent's managers unless it declares its own.
            for manager in mti_parent._meta.managers:
                copy.copy(manager).contribute_to_class(cls, manager.name)
        if not opts.managers:
            Manager().contribute_to_class(cls, "objects")
        exception_parents = [*abstract_parents, *([mti_parent] if mti_parent is not None else [])]
        cls.DoesNotExist = type(
            "DoesNotExist",
            tuple(getattr(p, "DoesNotExist", ObjectDoesNotExist) for p in exception_parents)
            or (ObjectDoesNotExist,),
            {"__module__": module, "__qualname__": f"{name}.DoesNotExist"},
        )
        cls.MultipleObjectsReturned = type(
            "MultipleObjectsReturned",
            tuple(
                getattr(p, "MultipleObjectsReturned", MultipleObjectsReturned)
                for p in exception_parents
            )
            or (MultipleObjectsReturned,),
            {"__module__": module, "__qualname__": f"{name}.MultipleObjectsReturned"},
        )
        _check_meta(cls)
        opts.apps.register_model(opts.app_label, cls)
        signals.class_prepared.send(sender=cls)
        return cls

    @property
    def _default_manager(cls) -> Manager:
        opts = cls._meta  # type: ignore[attr-defined]
        if opts.default_manager_name:
            return _named_manager(cls, opts.default_manager_name, "default_manager_name")
        return opts.managers[0]  # type: ignore[no-any-return]

    @property
    def _base_manager(cls) -> Manager:
        opts = cls._meta  # type: ignore[attr-defined]
        if opts.base_manager_name:
            return _named_manager(cls, opts.base_manager_name, "base_manager_name")
        manager = Manager()
        manager.model = cls  # type: ignore[assignment]
        manager.name = "_base_manager"
        return manager


def _named_manager(cls: Any, name: str, option: str) -> Manager:
    for manager in cls._meta.managers:
        if manager.name == name:
            return manager  # type: ignore[no-any-return]
    known = ", ".join(m.name for m in cls._meta.managers)
    raise ImproperlyConfigured(
        f"{cls.__name__}.Meta.{option} = {name!r} names no manager of the model; "
        f"its managers: {known}"
    )


def _check_meta(cls: type[Model]) -> None:
    opts = cls._meta
    for option in ("default_manager_name", "base_manager_name"):
        name = getattr(opts, option)
        if name:
            _named_manager(cls, name, option)
    names = {f.name for f in opts.fields} | {"pk"}
    for group in opts.unique_together:
        for name in group:
            if name not in names:
                raise FieldDoesNotExist(
                    f"{cls.__name__}.Meta.unique_together names unknown field {name!r}; "
                    f"fields are: {', '.join(sorted(names))}"
                )
    for index in opts.indexes:
        for name, _order in index.field_orders():
            if name not in names:
                raise FieldDoesNotExist(
                    f"{cls.__name__}.Meta.indexes names unknown field {name!r}; "
                    f"fields are: {', '.join(sorted(names))}"
                )
    for item in opts.ordering:
        if isinstance(item, str):
            bare = item.lstrip("-+?")
            if bare and bare.split("__")[0] not in names:
                raise FieldError(
                    f"{cls.__name__}.Meta.ordering names unknown field {bare!r}; "
                    f"fields are: {', '.join(sorted(names))}"
                )


def _fixed_default(field: Any) -> Any:
    """The immutable value ``field.get_default()`` always returns when the field has no
    default of its own (None, or the type's empty value), else NOT_PROVIDED."""
    if (
        type(field).get_default is not Field.get_default
        or field.has_default()
        or field.has_db_default()
    ):
        return NOT_PROVIDED
    value = None if field.null else field.empty_default
    return value if type(value) in (type(None), str, bytes, int) else NOT_PROVIDED


def _converts_on_init(field: Any) -> bool:
    """True when the constructor assigns ``field`` through its class attribute's
    ``__set__`` (see ``ValidatedAttribute.converts_on_init``)."""
    model = field.model
    descriptor = model.__dict__.get(field.attname) if model is not None else None
    return bool(getattr(descriptor, "converts_on_init", False))


def compile_keyword_init(fields: Sequence[Any]) -> Callable[[Any, dict[str, Any]], None]:
    """``init(instance, kwargs)`` setting each concrete field from kwargs or its default,
    as ``Model.__init__`` does field by field; a relation given by name, and a field whose
    descriptor ``converts_on_init``, go through the descriptor (which checks the value).
    Names are written as string literals."""
    # No ModelState here: _LazyState makes an adding one on first use (bulk_create and
    # many loops never need one per instance).
    namespace: dict[str, Any] = {}
    lines = [
        "def init(self, kwargs):",
        "    d = self.__dict__",
        "    pop = kwargs.pop",
    ]
    for i, field in enumerate(fields):
        namespace[f"default{i}"] = field.get_default
        fixed = _fixed_default(field)
        if fixed is not NOT_PROVIDED:
            namespace[f"default{i}"] = fixed
        name, attname = field.name, field.attname
        lines.append(f"    if {name!r} in kwargs:")
        if field.is_relation:
            lines.append(f"        setattr(self, {name!r}, pop({name!r}))")
            lines.append(f"    elif {attname!r} in kwargs:")
            lines.append(f"        d[{attname!r}] = pop({attname!r})")
        elif _converts_on_init(field):
            lines.append(f"        setattr(self, {attname!r}, pop({name!r}))")
        else:
            lines.append(f"        d[{attname!r}] = pop({name!r})")
        lines.append("    else:")
        call = "" if fixed is not NOT_PROVIDED else "()"
        lines.append(f"        d[{attname!r}] = default{i}{call}")
    exec(compile("\n".join(lines) + "\n", "<dorm keyword init>", "exec"), namespace)
    init: Callable[[Any, dict[str, Any]], None] = namespace["init"]
    return init


_UNSET = object()  # "not passed" for a keyword parameter of a compiled __init__
_RESERVED = frozenset({"self", "args", "kwargs"})


def compile_fast_init(model: type, fields: Sequence[Any]) -> Callable[..., None] | None:
    """``__init__(self, *args, <one keyword parameter per field>, **kwargs)`` for
    ``model``, installed on the class by ``Model.__init__`` on its first call.

    Python binds keyword arguments to parameters in C, about 40% faster than testing and
    popping a ``**kwargs`` dict field by field. The body sets what ``compile_keyword_init``
    sets, in the same order: the value passed, else the field's default (called per
    instance unless it is a fixed immutable one). Positional arguments, both a relation
    and its ``_id``, or an instance of a subclass take ``Model.__init__`` itself; names
    that are not fields stay in ``kwargs`` for ``_leftover_kwargs`` (properties, or the
    error naming them). Returns None when a field's name or attname cannot be a
    parameter (a keyword, not an identifier, one of the function's own names): that
    model keeps the generic path. Only checked identifiers are written into the source.
    """
    import keyword

    names: list[str] = []
    for field in fields:
        for name in dict.fromkeys((field.name, field.attname)):
            if (
                not name.isidentifier()
                or keyword.iskeyword(name)
                or name in _RESERVED
                or name.startswith("_dorm_")
            ):
                return None
            names.append(name)
    if len(set(names)) != len(names):
        return None
    # Builtins under names no field can take (a field may well be called ``type``).
    namespace: dict[str, Any] = {
        "_dorm_model": model,
        "_dorm_unset": _UNSET,
        "_dorm_type": type,
        "_dorm_setattr": setattr,
    }
    both: list[str] = []
    body: list[str] = []
    for i, field in enumerate(fields):
        name, attname = field.name, field.attname
        fixed = _fixed_default(field)
        if fixed is not NOT_PROVIDED:
            namespace[f"_dorm_fixed{i}"] = fixed
            fill = f"_dorm_fixed{i}"
        else:
            namespace[f"_dorm_default{i}"] = field.get_default
            fill = f"_dorm_default{i}()"
        if field.is_relation and name != attname:
            both.append(f"({name} is not _dorm_unset and {attname} is not _dorm_unset)")
            body += [
                f"    if {name} is not _dorm_unset:",
                f"        _dorm_setattr(self, {name!r}, {name})",
                f"    elif {attname} is not _dorm_unset:",
                f"        _dorm_d[{attname!r}] = {attname}",
                "    else:",
                f"        _dorm_d[{attname!r}] = {fill}",
            ]
            continue
        body.append(f"    if {name} is _dorm_unset:")
        body.append(f"        {name} = {fill}")
        if _converts_on_init(field):
            body.append(f"    _dorm_setattr(self, {attname!r}, {name})")
        else:
            body.append(f"    _dorm_d[{attname!r}] = {name}")
    fallback = " or ".join(["args", "_dorm_type(self) is not _dorm_model", *both])
    given = ", ".join(f"{n!r}: {n}" for n in names)
    lines = [
        f"def __init__(self, *args, {', '.join(f'{n}=_dorm_unset' for n in names)}, **kwargs):",
        f"    if {fallback}:",
        f"        _dorm_given = {{{given}}}",
        "        kwargs.update(",
        "            {_k: _v for _k, _v in _dorm_given.items() if _v is not _dorm_unset}",
        "        )",
        "        return self._init_generic(args, kwargs)",
        "    _dorm_d = self.__dict__",
        *body,
        "    if kwargs:",
        "        self._leftover_kwargs(kwargs)",
    ]
    exec(compile("\n".join(lines) + "\n", f"<dorm __init__ {model.__name__}>", "exec"), namespace)
    init: Callable[..., None] = namespace["__init__"]
    init._dorm_fast_init = True  # type: ignore[attr-defined]
    init.__qualname__ = f"{model.__qualname__}.__init__"
    return init


def _plain_init(cls: type) -> bool:
    """True when no class of ``cls``'s line up to Model defines an ``__init__`` of its
    own (a compiled one of an ancestor does not count)."""
    for klass in cls.__mro__:
        if klass is Model:
            return True
        init = klass.__dict__.get("__init__")
        if init is not None and not getattr(init, "_dorm_fast_init", False):
            return False
    return False


class Model(AsyncModelMixin, metaclass=ModelBase):
    """The base class of every model."""

    _meta: ClassVar[Options]
    _state: ModelState = _LazyState()  # type: ignore[assignment]
    DoesNotExist: ClassVar[type[ObjectDoesNotExist]]
    MultipleObjectsReturned: ClassVar[type[MultipleObjectsReturned]]
    objects: ClassVar[Manager]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        opts = cls._meta
        if opts.abstract:
            raise TypeError(f"{cls.__name__} is abstract and cannot be instantiated")
        if not args:
            fast = opts.fast_init
            if fast is not None:
                # From now on the class's own __init__ (Python binds the keywords), unless
                # a class of its line defines one: then this stays the way in.
                if _plain_init(cls):
                    cls.__init__ = fast  # type: ignore[method-assign]
                fast(self, **kwargs)
                return
        self._init_generic(args, kwargs)

    def _init_generic(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """``__init__`` without the compiled constructor: positional arguments, or what
        that constructor hands back (both a relation and its id, a subclass)."""
        cls = type(self)
        opts = cls._meta
        if not args:
            # The common Model(name=..., ...): a function compiled per model sets every
            # field, leaving in kwargs only what is not a field (properties, mistakes).
            opts.keyword_init(self, kwargs)
            if kwargs:
                self._leftover_kwargs(kwargs)
            return
        self._state = ModelState()
        values = self.__dict__
        fields = opts.concrete_fields
        if len(args) > len(fields):
            raise IndexError(f"{cls.__name__}() takes at most {len(fields)} positional arguments")
        for field, value in zip(fields, args, strict=False):
            if field.name in kwargs or field.attname in kwargs:
                raise TypeError(f"{cls.__name__}() got both positional and keyword {field.name!r}")
            # As Django: a positional value of a relation is its key (the attname).
            kwargs[field.attname if field.is_relation else field.name] = value
        for field in fields:
            if field.is_relation:
                if field.name in kwargs:
                    setattr(self, field.name, kwargs.pop(field.name))
                    continue
                if field.attname in kwargs:
                    values[field.attname] = kwargs.pop(field.attname)
                    continue
            elif field.name in kwargs:
                if _converts_on_init(field):
                    setattr(self, field.attname, kwargs.pop(field.name))
                else:
                    values[field.attname] = kwargs.pop(field.name)
                continue
            values[field.attname] = field.get_default()
        if kwargs:
            self._leftover_kwargs(kwargs)

    def _leftover_kwargs(self, kwargs: dict[str, Any]) -> None:
        """Apply keyword arguments that are not concrete fields: property setters; refuse
        many-to-many fields and unknown names."""
        cls = type(self)
        opts = cls._meta
        if kwargs:
            for name in list(kwargs):
                prop = getattr(cls, name, None)
                if isinstance(prop, property) and prop.fset is not None:
                    setattr(self, name, kwargs.pop(name))
                    continue
                try:
                    field = opts.get_field(name)
                except FieldDoesNotExist:
                    continue
                if getattr(field, "many_to_many", False):
                    raise TypeError(
                        f"direct assignment to the many-to-many field {cls.__name__}.{name} is "
                        f"not allowed; save the object, then use {name}.set(...)"
                    )
            if kwargs:
                raise TypeError(
                    f"{cls.__name__}() got unexpected keyword argument(s) "
                    f"{', '.join(map(repr, sorted(kwargs)))}; fields are: "
                    f"{', '.join(f.name for f in opts.fields)}"
                )

    @classmethod
    def from_db(cls, db: str, attnames: Sequence[str], values: Sequence[Any]) -> Model:
        """Build an instance from a row without running ``__init__`` (the fast path)."""
        obj = cls.__new__(cls)
        obj.__dict__.update(zip(attnames, values, strict=True))
        obj._state = ModelState(db, False)
        return obj

    # -- identity --------------------------------------------------------------------------------

    def _get_pk_val(self) -> Any:
        return self.__dict__.get(self._meta.pk.attname)  # type: ignore[union-attr]

    def _set_pk_val(self, value: Any) -> None:
        self.__dict__[self._meta.pk.attname] = value  # type: ignore[union-attr]

    pk = property(_get_pk_val, _set_pk_val)

    def __str__(self) -> str:
        return f"{type(self).__name__} object ({self.pk})"

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Model):
            return NotImplemented
        if type(self)._meta.label != type(other)._meta.label:
            return False
        pk = self.pk
        if pk is None:
            return self is other
        return bool(pk == other.pk)

    def __hash__(self) -> int:
        pk = self.pk
        if pk is None:
            raise TypeError("model instances without a primary key value are unhashable")
        return hash(pk)

    def __reduce__(self) -> Any:
        return (_unpickle, (type(self)._meta.label,), self.__getstate__())

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_state"] = copy.copy(self._state)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # -- persistence -----------------------------------------------------------------------------

    def save(
        self,
        force_insert: bool = False,
        force_update: bool = False,
        using: str | None = None,
        update_fields: Iterable[str] | None = None,
    ) -> None:
        """INSERT or UPDATE this object, as Django's ``save()`` does.

        :raises ValueError: ``update_fields`` names a field the model does not have, or a
            related object assigned to a foreign key is unsaved.
        """
        _persistence().save(self, force_insert, force_update, using, update_fields)

    save.alters_data = True  # type: ignore[attr-defined]

    def delete(self, using: str | None = None) -> tuple[int, dict[str, int]]:
        """Delete this object and what cascades from it; return (total, per model)."""
        return _persistence().delete(self, using)  # type: ignore[no-any-return]

    def refresh_from_db(
        self, using: str | None = None, fields: Iterable[str] | None = None
    ) -> None:
        """Reload field values from the database (all, or only ``fields``)."""
        _persistence().refresh(self, using, fields)

    # -- validation ------------------------------------------------------------------------------

    def clean_fields(self, exclude: Iterable[str] | None = None) -> None:
        skip = set(exclude or ())
        errors: dict[str, list[str]] = {}
        for field in self._meta.concrete_fields:
            if field.name in skip or field.auto_created:
                continue
            raw = self.__dict__.get(field.attname)
            if field.blank and raw in field.empty_values:
                continue
            try:
                self.__dict__[field.attname] = field.clean(raw, self)
            except ValidationError as exc:
                errors[field.name] = exc.messages
        if errors:
            raise ValidationError(errors)

    def clean(self) -> None:
        """Hook for model-wide validation; raise ValidationError."""

    def validate_unique(self, exclude: Iterable[str] | None = None) -> None:
        _persistence().validate_unique(self, set(exclude or ()))

    def validate_constraints(self, exclude: Iterable[str] | None = None) -> None:
        """Check ``Meta.constraints`` against this instance's values, as Django 4.1+ does.

        A single-field UniqueConstraint reports under its field, the others under
        ``__all__``; constraints touching an excluded field are skipped.
        """
        from dorm.db.router import router
        from dorm.models.constraints import UniqueConstraint

        cls = type(self)
        using = router.db_for_write(cls, instance=self)
        skip = set(exclude or ())
        errors: dict[str, list[str]] = {}
        for constraint in cls._meta.constraints:
            try:
                constraint.validate(cls, self, exclude=skip, using=using)
            except ValidationError as exc:
                key = "__all__"
                if isinstance(constraint, UniqueConstraint) and len(constraint.fields) == 1:
                    key = constraint.fields[0] if exc.code == "unique" else key
                errors.setdefault(key, []).extend(exc.messages)
        if errors:
            raise ValidationError(errors)

    def full_clean(
        self,
        exclude: Iterable[str] | None = None,
        validate_unique: bool = True,
        validate_constraints: bool = True,
    ) -> None:
        """Run ``clean_fields``, ``clean``, ``validate_unique`` and ``validate_constraints``.

        One ValidationError reports them all; fields that failed ``clean_fields`` are left
        out of the uniqueness and constraint checks, as in Django.
        """
        errors: dict[str, list[str]] = {}
        skip = set(exclude or ())

        def collect(step: Callable[[], None]) -> None:
            try:
                step()
            except ValidationError as exc:
                for key, messages in (exc.message_dict or {"__all__": exc.messages}).items():
                    errors.setdefault(key, []).extend(messages)

        collect(lambda: self.clean_fields(skip))
        collect(self.clean)
        checked = skip | (set(errors) - {"__all__"})
        if validate_unique:
            collect(lambda: self.validate_unique(checked))
        if validate_constraints:
            collect(lambda: self.validate_constraints(checked))
        if errors:
            raise ValidationError(errors)

    def serializable_value(self, field_name: str) -> Any:
        field = self._meta.get_field(field_name)
        return getattr(self, field.attname)


def _unpickle(label: str) -> Model:
    model = apps.get_model(label)
    return model.__new__(model)
