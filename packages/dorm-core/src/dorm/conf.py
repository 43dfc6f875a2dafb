"""Settings: ``dorm.configure(...)``, or a ``settings`` module found on first use.

Discovery order when ``configure()`` was not called: the module named by
``DORM_SETTINGS``, else ``settings.py`` (or a ``settings/`` package) in the working
directory. ``DORM_PROFILE=prod`` then imports ``<settings>.prod`` and its upper-case names
override the base module's.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

from dorm.exceptions import ImproperlyConfigured

__all__ = ["Settings", "configure", "parse_database_url", "settings"]

DEFAULTS: dict[str, Any] = {
    "DATABASES": {},
    "INSTALLED_APPS": [],
    "DATABASE_ROUTERS": [],
    "DEFAULT_AUTO_FIELD": "dorm.BigAutoField",
}

_DB_KEYS = frozenset(
    {
        "ENGINE",
        "NAME",
        "USER",
        "PASSWORD",
        "HOST",
        "PORT",
        "OPTIONS",
        "MIN_POOL_SIZE",
        "MAX_POOL_SIZE",
        "POOL_TIMEOUT",
        "TEST",
    }
)
_ENGINES = {
    "sqlite": "sqlite",
    "sqlite3": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "psycopg": "postgresql",
}
_URL_SCHEMES = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql"}


def parse_database_url(url: str) -> dict[str, Any]:
    """Turn ``postgresql://user:pw@host:5432/db?sslmode=require`` or ``sqlite:///path`` into a dict.

    ``sqlite:///app.db`` is the relative path ``app.db``; ``sqlite:////tmp/app.db`` is
    absolute; ``sqlite://`` and ``sqlite:///:memory:`` are an in-memory database.
    """
    from urllib.parse import parse_qsl, unquote, urlsplit

    parts = urlsplit(url)
    engine = _URL_SCHEMES.get(parts.scheme)
    if engine is None:
        raise ImproperlyConfigured(
            f"DATABASES: unsupported URL scheme {parts.scheme!r} in {_mask_url(url)!r}; "
            f"use postgresql://user:password@host:port/name or sqlite:///path"
        )
    if engine == "sqlite":
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        return {"ENGINE": "sqlite", "NAME": path or ":memory:"}
    options = dict(parse_qsl(parts.query))
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(
            f"DATABASES: the PORT in {_mask_url(url)!r} must be a number"
        ) from None
    result: dict[str, Any] = {
        "ENGINE": "postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": port or "",
    }
    for key in ("MIN_POOL_SIZE", "MAX_POOL_SIZE", "POOL_TIMEOUT"):
        if key.lower() in options:
            result[key] = options.pop(key.lower())
    if options:
        result["OPTIONS"] = options
    return result


def _mask_url(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def _positive(alias: str, key: str, value: Any, kind: Callable[[Any], Any]) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = None
    if number is None or number <= 0:
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}][{key!r}] must be a positive number, got {value!r}"
        )
    return number


def normalize_database(alias: str, value: Any) -> dict[str, Any]:
    """Validate one ``DATABASES`` entry (a dict or a URL) and return it with defaults filled."""
    if isinstance(value, str):
        value = parse_database_url(value)
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}] must be a dict or a URL string, got {type(value).__name__}"
        )
    unknown = sorted(set(value) - _DB_KEYS)
    if unknown:
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}] has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"known keys: {', '.join(sorted(_DB_KEYS))}"
        )
    engine_name = str(value.get("ENGINE", "")).rsplit(".", 1)[-1].lower()
    engine = _ENGINES.get(engine_name, engine_name)
    if not engine:
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}]['ENGINE'] is missing; use 'sqlite' or 'postgresql'"
        )
    db: dict[str, Any] = {
        "ENGINE": engine,
        "NAME": value.get("NAME", ""),
        "USER": value.get("USER", ""),
        "PASSWORD": value.get("PASSWORD", ""),
        "HOST": value.get("HOST", ""),
        "PORT": value.get("PORT", ""),
        "OPTIONS": dict(value.get("OPTIONS") or {}),
        "MIN_POOL_SIZE": _positive(alias, "MIN_POOL_SIZE", value.get("MIN_POOL_SIZE", 1), int),
        "MAX_POOL_SIZE": _positive(alias, "MAX_POOL_SIZE", value.get("MAX_POOL_SIZE", 10), int),
        "POOL_TIMEOUT": _positive(alias, "POOL_TIMEOUT", value.get("POOL_TIMEOUT", 30), float),
    }
    if db["MIN_POOL_SIZE"] > db["MAX_POOL_SIZE"]:
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}]: MIN_POOL_SIZE ({db['MIN_POOL_SIZE']}) is larger than "
            f"MAX_POOL_SIZE ({db['MAX_POOL_SIZE']})"
        )
    if db["PORT"] not in ("", None):
        try:
            db["PORT"] = int(db["PORT"])
        except (TypeError, ValueError):
            raise ImproperlyConfigured(
                f"DATABASES[{alias!r}]['PORT'] must be a number, got {db['PORT']!r}"
            ) from None
    if engine == "sqlite" and not db["NAME"]:
        raise ImproperlyConfigured(
            f"DATABASES[{alias!r}]['NAME'] is empty: give a file path or ':memory:'"
        )
    if engine == "postgresql" and not db["NAME"]:
        raise ImproperlyConfigured(f"DATABASES[{alias!r}]['NAME'] is empty: name the database")
    return db


class Settings:
    """The live settings: attribute access, configured on first use if ``configure()`` was not."""

    def __init__(self) -> None:
        self._values: dict[str, Any] | None = None
        self._lock = threading.RLock()
        self.SETTINGS_MODULE: str | None = None

    @property
    def configured(self) -> bool:
        return self._values is not None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        values = self._values
        if values is None:
            values = self._setup()
        try:
            return values[name]
        except KeyError:
            raise AttributeError(f"setting {name!r} is not defined") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_") or name == "SETTINGS_MODULE":
            object.__setattr__(self, name, value)
            return
        self._set({name: value})

    def configure(self, **values: Any) -> Settings:
        """``settings.configure(...)`` as in Django: the same as ``dorm.configure(...)``."""
        return configure(**values)

    def __dir__(self) -> Iterator[str]:
        return iter(sorted(self._values or {}))

    def _setup(self) -> dict[str, Any]:
        with self._lock:
            if self._values is None:
                module_values, module_name = _discover()
                self._apply(module_values)
                self.SETTINGS_MODULE = module_name
                from dorm.apps import apps

                apps.populate(self._values["INSTALLED_APPS"])  # type: ignore[index]
            assert self._values is not None
            return self._values

    def _apply(self, values: Mapping[str, Any]) -> None:
        merged = dict(DEFAULTS)
        merged.update({k: v for k, v in values.items() if k.isupper()})
        databases = merged.get("DATABASES") or {}
        if not isinstance(databases, Mapping):
            raise ImproperlyConfigured(
                f"DATABASES must be a dict of aliases, got {type(databases).__name__}"
            )
        merged["DATABASES"] = {a: normalize_database(a, v) for a, v in databases.items()}
        apps = merged.get("INSTALLED_APPS") or []
        if isinstance(apps, str) or not all(isinstance(a, str) for a in apps):
            raise ImproperlyConfigured(
                f"INSTALLED_APPS must be a list of module names, got {apps!r}"
            )
        self._values = merged

    def _set(self, values: Mapping[str, Any]) -> None:
        with self._lock:
            current = dict(self._values or {})
            current.update(values)
            self._apply(current)

    def _reset(self) -> None:
        with self._lock:
            self._values = None
            self.SETTINGS_MODULE = None


def _discover() -> tuple[dict[str, Any], str | None]:
    name = os.environ.get("DORM_SETTINGS")
    if not name:
        from pathlib import Path

        cwd = Path.cwd()
        if (cwd / "settings.py").is_file() or (cwd / "settings").is_dir():
            name = "settings"
            if str(cwd) not in sys.path:
                sys.path.insert(0, str(cwd))
    if not name:
        return {}, None
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"DORM_SETTINGS={name!r}: the settings module cannot be imported: {exc}"
        ) from exc
    except Exception as exc:
        raise _broken_settings(name, exc) from exc
    values = _upper(module)
    profile = os.environ.get("DORM_PROFILE")
    if profile:
        profile_name = f"{name}.{profile}"
        try:
            values.update(_upper(importlib.import_module(profile_name)))
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"DORM_PROFILE={profile!r}: cannot import {profile_name!r} "
                f"({name}/{profile}.py next to {name}/__init__.py): {exc}"
            ) from exc
        except Exception as exc:
            raise _broken_settings(profile_name, exc) from exc
        name = profile_name
    if "INSTALLED_APPS" not in values:
        values["INSTALLED_APPS"] = _sibling_apps(module)
    return values, name


def _broken_settings(name: str, exc: Exception) -> ImproperlyConfigured:
    """One line naming the file and line of an error in a settings module."""
    if isinstance(exc, SyntaxError):
        where = f"{exc.filename}, line {exc.lineno}"
        what = f"{type(exc).__name__}: {exc.msg}"
    else:
        frames = [f for f in _traceback_frames(exc) if f[0].endswith(".py")]
        where = f"{frames[-1][0]}, line {frames[-1][1]}" if frames else name
        what = f"{type(exc).__name__}: {exc}"
    return ImproperlyConfigured(f"the settings module {name!r} failed to load: {where}: {what}")


def _traceback_frames(exc: BaseException) -> list[tuple[str, int]]:
    """``(file, line)`` of each frame of ``exc``'s traceback, outermost first, leaving
    out the import machinery."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.startswith("<frozen"):
            frames.append((filename, tb.tb_lineno))
        tb = tb.tb_next
    return frames


def _upper(module: ModuleType) -> dict[str, Any]:
    return {k: getattr(module, k) for k in dir(module) if k.isupper()}


def _sibling_apps(module: ModuleType) -> list[str]:
    """Packages next to the settings module that hold a models.py (autodiscovery)."""
    from pathlib import Path

    file = getattr(module, "__file__", None)
    if not file:
        return []
    here = Path(file).resolve().parent
    if Path(file).name == "__init__.py":
        here = here.parent
    return sorted(
        p.name
        for p in here.iterdir()
        if p.is_dir() and (p / "models.py").is_file() and p.name.isidentifier()
    )


settings = Settings()


def configure(**values: Any) -> Settings:
    """Configure dorm in code: ``dorm.configure(DATABASES={...}, INSTALLED_APPS=[...])``.

    Replaces any earlier configuration, closes open connections, and imports the
    ``models`` module of every installed app.

    :raises ImproperlyConfigured: a setting has a value dorm cannot use; the message names
        the setting and the value.
    """
    from dorm.apps import apps
    from dorm.db.connection import connections

    with settings._lock:
        settings._apply(values)
        settings.SETTINGS_MODULE = None
    connections.reset()
    apps.populate(settings.INSTALLED_APPS)
    return settings
