"""The model registry: models by app label, lazy relation targets, installed apps."""

from __future__ import annotations

import importlib
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from dorm.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from dorm.models.base import Model

__all__ = ["Apps", "apps"]


class Apps:
    """Holds every model class by ``app_label`` and resolves ``"app.Model"`` references."""

    def __init__(self) -> None:
        self.all_models: dict[str, dict[str, type[Model]]] = defaultdict(dict)
        self._pending: dict[tuple[str, str], list[Callable[[type[Model]], None]]] = defaultdict(
            list
        )
        self._lock = threading.RLock()
        self.installed: list[str] = []

    def register_model(self, app_label: str, model: type[Model]) -> None:
        name = model.__name__.lower()
        with self._lock:
            existing = self.all_models[app_label].get(name)
            same_class = existing is not None and (existing.__module__, existing.__qualname__) == (
                model.__module__,
                model.__qualname__,
            )
            if existing is not None and existing is not model and not same_class:
                raise RuntimeError(
                    f"conflicting models in app {app_label!r}: {existing.__module__}."
                    f"{existing.__qualname__} and {model.__module__}.{model.__qualname__}; "
                    f"set Meta.app_label on one of them"
                )
            self.all_models[app_label][name] = model
            waiting = self._pending.pop((app_label, name), [])
        for callback in waiting:
            callback(model)

    def get_model(self, label: str, model_name: str | None = None) -> type[Model]:
        """Return the model ``"app_label.ModelName"`` (or ``get_model(app, name)``)."""
        if model_name is None:
            if "." not in label:
                raise LookupError(f"model label {label!r} must look like 'app_label.ModelName'")
            label, model_name = label.split(".", 1)
        try:
            return self.all_models[label][model_name.lower()]
        except KeyError:
            known = ", ".join(
                sorted(
                    f"{a}.{m._meta.object_name}"
                    for a, ms in self.all_models.items()
                    for m in ms.values()
                )
            )
            raise LookupError(
                f"no model {label}.{model_name}; known models: {known or 'none'}"
            ) from None

    def get_models(self) -> list[type[Model]]:
        return [m for models in self.all_models.values() for m in models.values()]

    def lazy(
        self, app_label: str, model_name: str, callback: Callable[[type[Model]], None]
    ) -> None:
        """Call ``callback(model)`` now if the model exists, else once it is registered."""
        with self._lock:
            model = self.all_models.get(app_label, {}).get(model_name.lower())
            if model is None:
                self._pending[(app_label, model_name.lower())].append(callback)
                return
        callback(model)

    def pending_references(self) -> list[str]:
        return sorted(f"{a}.{m}" for a, m in self._pending)

    def populate(self, installed_apps: Iterable[str]) -> None:
        """Import ``<app>.models`` for each installed app (an app without models is fine)."""
        self.installed = list(installed_apps)
        for app in self.installed:
            try:
                importlib.import_module(app)
            except ImportError as exc:
                raise ImproperlyConfigured(f"INSTALLED_APPS: cannot import {app!r}: {exc}") from exc
            try:
                importlib.import_module(f"{app}.models")
            except ModuleNotFoundError as exc:
                if exc.name != f"{app}.models":
                    raise

    def clear(self, app_label: str | None = None) -> None:
        """Forget the models of one app (or all); for tests that define models per test."""
        with self._lock:
            if app_label is None:
                self.all_models.clear()
                self._pending.clear()
            else:
                self.all_models.pop(app_label, None)

    def check_pending(self) -> None:
        pending = self.pending_references()
        if pending:
            raise ImproperlyConfigured(
                f"related fields point at models that were never defined: {', '.join(pending)}"
            )

    def __repr__(self) -> str:
        return f"<Apps {sum(len(m) for m in self.all_models.values())} models>"


apps = Apps()
