"""Fixtures for the dorm-fields tests: the plugin is registered for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dorm import plugins
from dorm.contrib.extra_fields import plugin as extra_fields_plugin


@pytest.fixture(autouse=True)
def extra_fields_registered() -> Iterator[None]:
    """Register dorm-fields' hooks unless its entry point already did (autoload off)."""
    pm = plugins.get_plugin_manager()
    added = not pm.is_registered(extra_fields_plugin)
    if added:
        plugins.register(extra_fields_plugin, name="extra_fields")
    yield
    if added:
        plugins.unregister(extra_fields_plugin)
