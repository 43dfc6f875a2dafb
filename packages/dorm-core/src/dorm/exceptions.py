"""Exception classes shared by dorm-core and every plugin."""

from __future__ import annotations

__all__ = [
    "CommandError",
    "DormError",
    "ImproperlyConfigured",
    "PluginConflictError",
    "PluginError",
    "PluginLoadError",
]


class DormError(Exception):
    """Base class of every exception dorm raises on its own account."""


class ImproperlyConfigured(DormError):
    """A setting is missing or has a value dorm cannot use."""


class PluginError(DormError):
    """Base class for problems with a plugin or a hook implementation."""


class PluginLoadError(PluginError):
    """A plugin named in the ``dorm`` entry-point group could not be loaded."""


class PluginConflictError(PluginError):
    """Two plugins (or a plugin and core) claim the same name or slot."""


class CommandError(DormError):
    """A ``dorm`` CLI command failed; the message is shown to the user as is."""
