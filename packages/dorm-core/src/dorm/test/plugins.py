"""``register_plugin(obj)``: a dorm plugin registered for the duration of a test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dorm import plugins

__all__ = ["register_plugin"]


@contextmanager
def register_plugin(plugin: object, name: str | None = None) -> Iterator[str]:
    """Register ``plugin`` (a module or object with ``@hookimpl`` functions) in the block,
    then unregister it; yields the name it is registered under.

    The plugin is validated as an entry point is (an unknown hook name raises
    ``PluginLoadError`` and registers nothing), and the extension registries (lookups,
    SQL renderers, field types) are rebuilt on next use, both on the way in and out.
    A plugin that is registered already, typically by its own distribution's entry point
    in the development install, is left as it is: the block uses it and does not
    unregister it. ``DORM_DISABLE_PLUGIN_AUTOLOAD=1`` keeps entry points out entirely.

    :raises PluginConflictError: another plugin is registered under ``name``.
    """
    pm = plugins.get_plugin_manager()
    if pm.is_registered(plugin):
        existing = pm.get_name(plugin)
        assert existing is not None
        yield existing
        return
    registered = plugins.register(plugin, name=name)
    try:
        yield registered
    finally:
        # The block may have unregistered it itself.
        if plugins.get_plugin_manager().is_registered(plugin):
            plugins.unregister(plugin)
