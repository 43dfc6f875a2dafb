"""``Model.objects``: the Manager, a QuerySet factory that proxies its methods."""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from dorm.models.base import Model
    from dorm.models.query import QuerySet

__all__ = ["BaseManager", "Manager"]


class ManagerDescriptor:
    def __init__(self, manager: BaseManager) -> None:
        self.manager = manager

    def __get__(self, instance: Any, owner: type | None = None) -> BaseManager:
        if instance is not None:
            raise AttributeError(
                f"Manager isn't accessible via {type(instance).__name__} instances; use "
                f"{type(instance).__name__}.{self.manager.name}"
            )
        return self.manager


class BaseManager:
    """A manager; subclass and override ``get_queryset()`` to change the default set."""

    _queryset_class: ClassVar[type[QuerySet] | None] = None
    creation_counter = 0
    #: Kept in the migration state (CreateModel ``managers=``, AlterModelManagers), so
    #: RunPython code can use it on the historical model, as in Django.
    use_in_migrations: ClassVar[bool] = False
    _constructor_args: tuple[tuple[Any, ...], dict[str, Any]]

    def __new__(cls, *args: Any, **kwargs: Any) -> BaseManager:
        obj = super().__new__(cls)
        obj._constructor_args = (args, kwargs)  # what deconstruct() rebuilds it from
        return obj

    def __init__(self) -> None:
        BaseManager.creation_counter += 1
        self.creation_counter = BaseManager.creation_counter
        self.model: type[Model] = None  # type: ignore[assignment]
        self.name = ""
        self._db: str | None = None
        self._hints: dict[str, Any] = {}

    def __repr__(self) -> str:
        label = self.model._meta.label if self.model is not None else "?"
        return f"<{type(self).__name__} {label}.{self.name}>"

    def contribute_to_class(self, cls: type[Model], name: str) -> None:
        self.name = name
        self.model = cls
        setattr(cls, name, ManagerDescriptor(self))
        cls._meta.managers.append(self)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        """``(import path, args, kwargs)`` that rebuild this manager in a migration.

        :raises ValueError: the manager's class cannot be imported by that path (a class
            made by ``from_queryset()`` or ``as_manager()`` must be bound to a module-level
            name, as in Django).
        """
        import importlib

        cls = type(self)
        module, name = cls.__module__, cls.__qualname__
        found: Any = None
        if "<locals>" not in name:
            try:
                found = importlib.import_module(module)
                for part in name.split("."):
                    found = getattr(found, part, None)
            except ImportError:
                found = None
        if found is not cls:
            label = self.model._meta.label if self.model is not None else "?"
            raise ValueError(
                f"manager {label}.{self.name} (use_in_migrations = True): its class "
                f"{name} cannot be imported from {module}; a migration rebuilds it from "
                f"that path. Define the class at module level (for from_queryset(): "
                f"class {name}(Manager.from_queryset(MyQuerySet)): pass)"
            )
        args, kwargs = getattr(self, "_constructor_args", ((), {}))
        import dorm

        if module.startswith("dorm.") and getattr(dorm, name, None) is cls:
            module = "dorm"  # dorm.Manager rather than its defining module
        return f"{module}.{name}", list(args), dict(kwargs)

    def clone(self) -> BaseManager:
        """A new, unbound manager built as this one was (for historical models)."""
        args, kwargs = getattr(self, "_constructor_args", ((), {}))
        return type(self)(*args, **kwargs)

    def db_manager(
        self, using: str | None = None, hints: dict[str, Any] | None = None
    ) -> BaseManager:
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._db = using or self._db
        clone._hints = hints or self._hints
        return clone

    @property
    def db(self) -> str:
        from dorm.db.router import router

        return self._db or router.db_for_read(self.model, **self._hints)

    def get_queryset(self) -> QuerySet:
        qs_class = self._queryset_class or _default_queryset[0]
        return qs_class(self.model, None, self._db, self._hints)

    def all(self) -> QuerySet:
        return self.get_queryset()

    if TYPE_CHECKING:
        # QuerySet methods are proxied onto Manager at import time (_install_proxies).
        def __getattr__(self, name: str) -> Any: ...

    @classmethod
    def from_queryset(cls, queryset_class: type[QuerySet], class_name: str | None = None) -> type:
        """A Manager class whose methods include the custom QuerySet's public methods."""
        attrs: dict[str, Any] = {"_queryset_class": queryset_class}
        for name, method in _functions(queryset_class):
            if name.startswith("_") or hasattr(cls, name):
                continue
            attrs[name] = _proxy(name, method)
        return type(class_name or f"{cls.__name__}From{queryset_class.__name__}", (cls,), attrs)


#: dorm.models.query.QuerySet, set when that module installs the proxies (it imports this one).
_default_queryset: list[Any] = [None]


def _functions(cls: type) -> list[tuple[str, Any]]:
    """``inspect.getmembers(cls, inspect.isfunction)`` without importing inspect."""
    found = []
    for name in sorted(dir(cls)):
        value = getattr(cls, name, None)
        if isinstance(value, types.FunctionType):
            found.append((name, value))
    return found


def _proxy(name: str, method: Any) -> Any:
    def manager_method(self: BaseManager, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.get_queryset(), name)(*args, **kwargs)

    manager_method.__name__ = name
    manager_method.__doc__ = method.__doc__
    return manager_method


def _install_proxies(**direct: Any) -> None:
    """Proxy QuerySet's public methods onto Manager; ``direct`` gives a method's own
    Manager implementation (a fast path that falls back to the QuerySet's)."""
    from dorm.models.query import QuerySet

    _default_queryset[0] = QuerySet
    for name, method in _functions(QuerySet):
        if name.startswith("_") and name not in ("_update", "_insert"):
            continue
        if name in ("all", "as_manager", "resolve_expression") or hasattr(BaseManager, name):
            continue
        if name in direct:
            direct[name].__name__ = name
            direct[name].__doc__ = method.__doc__
            setattr(Manager, name, direct[name])
            continue
        setattr(Manager, name, _proxy(name, method))


class Manager(BaseManager):
    """The default manager (``objects``): every QuerySet method is available on it."""
