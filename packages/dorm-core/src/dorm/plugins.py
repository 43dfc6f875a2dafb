"""The one plugin manager of dorm: entry-point loading, hook dispatch, extension registries.

Plugins are modules with ``@hookimpl`` functions, named in the ``dorm`` entry-point group
of their distribution. The manager is created on first use, loads every entry point once,
then calls ``check_pending()`` so that a misspelt hook name fails at startup rather than
being silently ignored. ``DORM_DISABLE_PLUGIN_AUTOLOAD=1`` skips the entry points (core's
own hooks still register).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from dorm import __version__
from dorm.exceptions import PluginConflictError, PluginError, PluginLoadError, did_you_mean

if TYPE_CHECKING:
    import pluggy

    from dorm.cli.command import Command
    from dorm.hookspecs import DBType, SQLRenderer

    hookimpl: pluggy.HookimplMarker

__all__ = [
    "ENTRY_POINT_GROUP",
    "Extensions",
    "PluginInfo",
    "collect_commands",
    "extensions",
    "get_plugin_manager",
    "has_impls",
    "hookimpl",
    "hooks_of",
    "lazy_exports",
    "notify",
    "plugin_infos",
    "register",
    "unregister",
]


def lazy_exports(
    module_name: str, exports: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package that re-exports ``exports`` (name ->
    the module that defines it) on first use instead of importing them.

    A plugin's entry point imports its package: with lazy re-exports, loading the plugins
    (at the first model class, hook or query) costs almost nothing until the plugin's
    names are used. ``__getattr__, __dir__ = lazy_exports(__name__, {...})``.
    """
    import importlib
    import sys

    def getattr_(name: str) -> Any:
        source = exports.get(name)
        if source is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        setattr(sys.modules[module_name], name, value)  # found directly from now on
        return value

    def dir_() -> list[str]:
        return sorted({*vars(sys.modules[module_name]), *exports})

    return getattr_, dir_


def __getattr__(name: str) -> Any:
    """``hookimpl``, pluggy's marker for dorm hooks, made on first use: pluggy (and the
    inspect module it imports) is loaded with the plugin manager, not by ``import dorm``."""
    if name == "hookimpl":
        import pluggy

        from dorm import hookspecs

        marker = pluggy.HookimplMarker(hookspecs.PROJECT)
        globals()["hookimpl"] = marker
        return marker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


ENTRY_POINT_GROUP = "dorm"
_AUTOLOAD_ENV = "DORM_DISABLE_PLUGIN_AUTOLOAD"
# Core's own hookimpls: registered through the same manager as any plugin.
_CORE_PLUGIN_MODULES = ("dorm.cli.builtin", "dorm.db.backends.registry", "dorm.sql.builtins")
_CORE_NAME = "dorm-core"
_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")  # fullmatch: "$" would let a trailing newline in
_SQL_FUNCTION_RE = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$")
_COMMAND_RE = re.compile(r"^[a-z][a-z0-9-]*$")

logger = logging.getLogger("dorm.plugins")


class PluginInfo(NamedTuple):
    """Where a registered plugin came from."""

    name: str
    #: None for a plugin registered at runtime with ``register()``.
    distribution: str | None
    version: str | None
    entry_point: str | None


_lock = threading.RLock()
_pm: pluggy.PluginManager | None = None
_infos: dict[str, PluginInfo] = {}
_extensions: Extensions | None = None
# has_impls() answers per plugin manager; cleared by _invalidate() on (un)register, and
# rebuilt when the manager itself is replaced (tests swap ``_pm`` for a fresh one).
_impls_cache: tuple[object, dict[tuple[str, ...], bool]] = (None, {})
# hook name -> its implementations in call order, or None when one of them wraps the call;
# kept beside _impls_cache and cleared with it.
_plain_impls: tuple[object, dict[str, tuple[Any, ...] | None]] = (None, {})
# hook name -> its implementations in call order, for notify(); cleared with the others.
_observer_impls: tuple[object, dict[str, tuple[Any, ...]]] = (None, {})


def get_plugin_manager() -> pluggy.PluginManager:
    """Return the process-wide plugin manager, loading the entry points on first call.

    :raises PluginLoadError: an entry point failed to import or implements an unknown hook.
    :raises PluginConflictError: two distributions use the same entry-point name.
    """
    pm = _pm
    if pm is not None:
        return pm
    with _lock:
        if _pm is None:
            _create()
        assert _pm is not None
        return _pm


def _create() -> None:
    global _pm
    import pluggy

    from dorm import hookspecs

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    for module_name in _CORE_PLUGIN_MODULES:
        module = __import__(module_name, fromlist=["_"])
        pm.register(module, name=module_name)
        infos[module_name] = PluginInfo(module_name, _CORE_NAME, __version__, None)
    if os.environ.get(_AUTOLOAD_ENV, "") not in ("1", "true", "yes"):
        for name, plugin, info in _load_entry_points():
            if pm.has_plugin(name):
                other = infos[name]
                raise PluginConflictError(
                    f"entry point {name!r} of group {ENTRY_POINT_GROUP!r} is declared by both "
                    f"{other.distribution} {other.version} and {info.distribution} "
                    f"{info.version}; uninstall one of them"
                )
            try:
                pm.register(plugin, name=name)
            except ValueError as exc:  # the same module object under two names
                raise PluginConflictError(f"{_describe(info)}: {exc}") from exc
            infos[name] = info
    for name, info in infos.items():
        _validate(pm, pm.get_plugin(name), info)
    pm.check_pending()  # a guard: _validate has already named the plugin at fault
    _infos.clear()
    _infos.update(infos)
    _pm = pm


def _load_entry_points() -> Iterator[tuple[str, Any, PluginInfo]]:
    seen: set[tuple[str, str]] = set()
    # Not importlib.metadata: importing it costs ~20 ms (see dorm.entry_points).
    from dorm.entry_points import entry_points

    for ep in sorted(entry_points(ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        # The same distribution can be visible twice (e.g. an editable install plus a
        # stale egg-info); load it once.
        if (ep.distribution, ep.name) in seen:
            continue
        seen.add((ep.distribution, ep.name))
        info = PluginInfo(ep.name, ep.distribution, ep.version, f"{ep.name} = {ep.value}")
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginLoadError(
                f"{_describe(info)} failed to import: {type(exc).__name__}: {exc}. "
                f"Reinstall or uninstall {ep.distribution}, or set {_AUTOLOAD_ENV}=1 to "
                f"start without plugins"
            ) from exc
        yield ep.name, plugin, info


def _describe(info: PluginInfo) -> str:
    where = f" ({info.entry_point})" if info.entry_point else ""
    source = f" from {info.distribution} {info.version}" if info.distribution else ""
    return f"dorm plugin {info.name!r}{where}{source}"


def _validate(pm: pluggy.PluginManager, plugin: object, info: PluginInfo) -> None:
    """Reject unknown hook names and wrapper impls on observer hooks."""
    from dorm import hookspecs

    for caller in pm.get_hookcallers(plugin) or []:
        if caller.spec is None:
            known = ", ".join(hookspecs.spec_names())
            hint = did_you_mean(caller.name, hookspecs.spec_names())
            raise PluginLoadError(
                f"{_describe(info)} implements unknown hook {caller.name!r}.{hint} "
                f"Known hooks: {known}"
            )
        if caller.name in hookspecs.OBSERVER_HOOKS:
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and (impl.wrapper or impl.hookwrapper):
                    raise PluginLoadError(
                        f"{_describe(info)}: {caller.name} is an observer hook; implement "
                        f"it as a plain function, not a wrapper"
                    )


def register(plugin: object, name: str | None = None) -> str:
    """Register ``plugin`` (a module or object with ``@hookimpl`` functions) at runtime.

    For applications and tests that do not ship an entry point. Returns the name it is
    registered under; the extension registries are rebuilt on next use.

    :raises PluginLoadError: the plugin implements an unknown hook; nothing is registered.
    :raises PluginConflictError: the name is taken.
    """
    pm = get_plugin_manager()
    with _lock:
        reg_name = name or getattr(plugin, "__name__", None) or f"plugin-{id(plugin)}"
        if pm.has_plugin(reg_name) or pm.is_registered(plugin):
            raise PluginConflictError(f"a dorm plugin named {reg_name!r} is already registered")
        info = PluginInfo(reg_name, None, None, None)
        pm.register(plugin, name=reg_name)
        try:
            _validate(pm, plugin, info)
        except PluginLoadError:
            pm.unregister(plugin)
            raise
        _infos[reg_name] = info
        _invalidate()
        return reg_name


def unregister(plugin: object) -> None:
    """Undo ``register``: ``plugin`` is the object or the name it was registered under."""
    pm = get_plugin_manager()
    with _lock:
        obj = pm.get_plugin(plugin) if isinstance(plugin, str) else plugin
        if obj is None or not pm.is_registered(obj):
            raise ValueError(f"{plugin!r} is not a registered dorm plugin")
        name = pm.get_name(obj)
        pm.unregister(obj)
        if name is not None:
            _infos.pop(name, None)
        _invalidate()


def _invalidate() -> None:
    global _extensions, _impls_cache, _plain_impls, _observer_impls
    _extensions = None
    _impls_cache = (None, {})
    _plain_impls = (None, {})
    _observer_impls = (None, {})


def plugin_infos() -> list[PluginInfo]:
    """Return every registered plugin, core's first, then by name."""
    get_plugin_manager()
    return sorted(
        _infos.values(),
        key=lambda i: (i.distribution != _CORE_NAME, i.distribution is None, i.name),
    )


def hooks_of(name: str) -> list[str]:
    """Return the sorted hook names that the plugin registered as ``name`` implements."""
    pm = get_plugin_manager()
    plugin = pm.get_plugin(name)
    if plugin is None:
        raise ValueError(f"{name!r} is not a registered dorm plugin")
    return sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])


def has_impls(*hook_names: str) -> bool:
    """Return True when a plugin implements one of ``hook_names`` (cheap; for hot paths)."""
    global _impls_cache
    owner, known = _impls_cache
    if owner is _pm and owner is not None:
        found = known.get(hook_names)
        if found is not None:
            return found  # the hot path: the manager unchanged and the answer known
    pm = get_plugin_manager()
    owner, known = _impls_cache
    if owner is not pm:
        known = {}
        _impls_cache = (pm, known)
    found = known.get(hook_names)
    if found is None:
        # pluggy rebuilds its impl list on every call; the answer only changes on
        # (un)register, so it is remembered until then.
        found = known[hook_names] = any(
            getattr(pm.hook, name).get_hookimpls() for name in hook_names
        )
    return found


def isawaitable(value: object) -> bool:
    """``inspect.isawaitable``, importing inspect (a few ms) only when a hook or receiver
    returned something, not at ``import dorm``."""
    import inspect

    return inspect.isawaitable(value)


def call(hook_name: str, **kwargs: Any) -> list[Any]:
    """Call the hook ``hook_name`` as pluggy does (last registered first, exceptions
    propagate, the non-None results in a list), without pluggy's dispatch machinery when
    no implementation is a wrapper: the signals call this on every save and delete."""
    global _plain_impls
    pm = get_plugin_manager()
    owner, known = _plain_impls
    if owner is not pm:
        known = {}
        _plain_impls = (pm, known)
    try:
        impls = known[hook_name]
    except KeyError:
        found = getattr(pm.hook, hook_name).get_hookimpls()
        wraps = any(impl.hookwrapper or getattr(impl, "wrapper", False) for impl in found)
        impls = known[hook_name] = None if wraps else tuple(reversed(found))
    if impls is None:
        return list(getattr(pm.hook, hook_name)(**kwargs))
    results = []
    for impl in impls:
        result = impl.function(*[kwargs[arg] for arg in impl.argnames])
        if result is not None:
            results.append(result)
    return results


def notify(hook_name: str, **kwargs: Any) -> None:
    """Call the observer hook ``hook_name``; an implementation's exception is logged, not raised.

    Every implementation runs even when an earlier one raised, so one broken tracer does
    not blind another, and the ORM operation being reported is never changed by a plugin.
    """
    global _observer_impls
    pm = get_plugin_manager()
    owner, known = _observer_impls
    if owner is not pm:
        known = {}
        _observer_impls = (pm, known)
    impls = known.get(hook_name)
    if impls is None:
        # pluggy rebuilds its impl list on every call; post_query runs per statement.
        # Last registered first, pluggy's own call order.
        impls = known[hook_name] = tuple(reversed(getattr(pm.hook, hook_name).get_hookimpls()))
    for impl in impls:
        try:
            result = impl.function(*[kwargs[arg] for arg in impl.argnames])
            if result is not None and isawaitable(result):
                from dorm.db.bridge import resolve

                resolve(result, f"the {hook_name} hookimpl of {impl.plugin_name!r}")
        except Exception:
            logger.exception(
                "dorm plugin %r raised in observer hook %s; the error was ignored and "
                "the operation went on",
                impl.plugin_name,
                hook_name,
            )


def _collect(hook_name: str) -> Iterator[tuple[str, Any]]:
    """Yield ``(owner, item)`` for every item each implementation of a register hook returns."""
    caller = getattr(get_plugin_manager().hook, hook_name)
    for impl in reversed(caller.get_hookimpls()):
        try:
            items = impl.function()
        except Exception as exc:
            raise PluginError(
                f"dorm plugin {impl.plugin_name!r} failed in {hook_name}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if items is None:
            continue
        if not isinstance(items, (list, tuple)):
            raise PluginError(
                f"dorm plugin {impl.plugin_name!r}: {hook_name} must return a list, "
                f"got {type(items).__name__}"
            )
        for item in items:
            yield impl.plugin_name, item


def _put(table: dict[Any, tuple[str, Any]], key: Any, owner: str, value: Any, what: str) -> None:
    previous = table.get(key)
    if previous is not None and previous[1] is not value:
        raise PluginConflictError(
            f"{what} is registered by both {previous[0]!r} and {owner!r}; "
            f"uninstall or disable one of them"
        )
    table[key] = (owner, value)


def collect_commands() -> dict[str, tuple[str, type[Command]]]:
    """Return ``{command name: (owner, command class)}`` from ``dorm_register_commands``.

    :raises PluginConflictError: two owners register the same command name.
    :raises PluginError: a command class has no valid ``name``.
    """
    table: dict[Any, tuple[str, Any]] = {}
    for owner, cls in _collect("dorm_register_commands"):
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not _COMMAND_RE.match(name):
            raise PluginError(
                f"dorm plugin {owner!r}: command class {cls!r} needs a lower-case "
                f"'name' such as 'worker', got {name!r}"
            )
        _put(table, name, owner, cls, f"command {name!r}")
    return table


def _node_name(cls: object) -> str:
    return getattr(cls, "__qualname__", repr(cls))


def _check_vendor(owner: str, vendor: object, hook_name: str) -> str:
    if not isinstance(vendor, str) or not _NAME_RE.fullmatch(vendor):
        raise PluginError(
            f"dorm plugin {owner!r}: {hook_name} needs a vendor name such as "
            f"'postgresql' or 'sqlite', got {vendor!r}"
        )
    return vendor


class Extensions(NamedTuple):
    """Compiler extensions registered by core and plugins, combined once and cached."""

    lookups: dict[type, dict[str, type]]
    transforms: dict[type, dict[str, type]]
    functions: dict[str, type]
    vendor_sql: dict[tuple[type, str], SQLRenderer]
    field_types: dict[tuple[type, str], DBType]

    def lookup(self, field_class: type, name: str) -> type | None:
        """Return the lookup ``name`` for ``field_class`` or its nearest base, or None."""
        return _by_mro(self.lookups, field_class, name)

    def transform(self, field_class: type, name: str) -> type | None:
        """Return the transform ``name`` for ``field_class`` or its nearest base, or None."""
        return _by_mro(self.transforms, field_class, name)

    def lookup_names(self, field_class: type) -> set[str]:
        """Return every lookup and transform name usable on ``field_class``."""
        names: set[str] = set()
        for klass in field_class.__mro__:
            names.update(self.lookups.get(klass, ()))
            names.update(self.transforms.get(klass, ()))
        return names

    def renderer(self, node_class: type, vendor: str) -> SQLRenderer | None:
        """Return the registered SQL override for ``node_class`` on ``vendor``, or None."""
        for klass in node_class.__mro__:
            found = self.vendor_sql.get((klass, vendor))
            if found is not None:
                return found
        return None

    def field_type(self, field_class: type, vendor: str) -> DBType | None:
        """Return the registered column type for ``field_class`` on ``vendor``, or None."""
        return self.field_types.get((field_class, vendor))


def _by_mro(table: dict[type, dict[str, type]], field_class: type, name: str) -> type | None:
    for klass in field_class.__mro__:
        found = table.get(klass, {}).get(name)
        if found is not None:
            return found
    return None


def _pairs(hook_name: str, attr: str) -> dict[type, dict[str, type]]:
    table: dict[Any, tuple[str, Any]] = {}
    for owner, item in _collect(hook_name):
        if not (
            isinstance(item, tuple) and len(item) == 2 and all(isinstance(c, type) for c in item)
        ):
            raise PluginError(
                f"dorm plugin {owner!r}: {hook_name} must return (field_class, "
                f"{attr.split('_')[0]}_class) pairs, got {item!r}"
            )
        field_class, node = item
        name = getattr(node, "lookup_name", None)
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or "__" in name:
            raise PluginError(
                f"dorm plugin {owner!r}: {node.__qualname__}.lookup_name must be a "
                f"lower-case identifier without '__', got {name!r}"
            )
        _put(
            table,
            (field_class, name),
            owner,
            node,
            f"{attr} {name!r} on {_node_name(field_class)}",
        )
    result: dict[type, dict[str, type]] = {}
    for (field_class, name), (_owner, node) in table.items():
        result.setdefault(field_class, {})[name] = node
    return result


def _triples(
    hook_name: str, shape: str, value_ok: Callable[[Any], bool], what: str
) -> dict[Any, tuple[str, Any]]:
    """Combine ``(class, vendor, value)`` triples keyed by (class, vendor), checking each."""
    table: dict[Any, tuple[str, Any]] = {}
    for owner, item in _collect(hook_name):
        if not (
            isinstance(item, tuple)
            and len(item) == 3
            and isinstance(item[0], type)
            and value_ok(item[2])
        ):
            raise PluginError(
                f"dorm plugin {owner!r}: {hook_name} must return {shape} triples, got {item!r}"
            )
        cls, vendor, value = item
        vendor = _check_vendor(owner, vendor, hook_name)
        _put(table, (cls, vendor), owner, value, what.format(_node_name(cls), vendor))
    return table


def _build_extensions() -> Extensions:
    lookups = _pairs("dorm_register_lookups", "lookup")
    transforms = _pairs("dorm_register_transforms", "transform")
    functions: dict[Any, tuple[str, Any]] = {}
    for owner, cls in _collect("dorm_register_functions"):
        if not isinstance(cls, type):
            raise PluginError(
                f"dorm plugin {owner!r}: dorm_register_functions must return classes, got {cls!r}"
            )
        sql_name = getattr(cls, "function", "")
        if sql_name and not (isinstance(sql_name, str) and _SQL_FUNCTION_RE.fullmatch(sql_name)):
            # The name is written into SQL as is: it must be a (schema-qualified) identifier.
            raise PluginError(
                f"dorm plugin {owner!r}: {cls.__qualname__}.function must be an SQL function "
                f"name (letters, digits, '_', an optional 'schema.' prefix), got {sql_name!r}"
            )
        _put(functions, cls.__name__, owner, cls, f"function {cls.__name__!r}")
    vendor_sql = _triples(
        "dorm_register_vendor_sql", "(node_class, vendor, renderer)", callable, "SQL for {} on {}"
    )
    field_types = _triples(
        "dorm_register_field_types",
        "(field_class, vendor, db_type)",
        lambda v: isinstance(v, str) or callable(v),
        "column type of {} on {}",
    )
    return Extensions(
        lookups=lookups,
        transforms=transforms,
        functions={name: cls for name, (_o, cls) in functions.items()},
        vendor_sql={key: fn for key, (_o, fn) in vendor_sql.items()},
        field_types={key: t for key, (_o, t) in field_types.items()},
    )


def extensions() -> Extensions:
    """Return the combined compiler extensions, built on first call and after (un)register.

    :raises PluginConflictError: two owners register the same lookup, function, vendor SQL
        or column type; the message names both.
    """
    global _extensions
    ext = _extensions
    if ext is None:
        with _lock:
            if _extensions is None:
                _extensions = _build_extensions()
            ext = _extensions
    return ext
