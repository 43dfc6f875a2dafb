"""Fixtures for the dorm-tasks tests: the plugin is registered for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dorm import plugins
from dorm.contrib.tasks import plugin as tasks_plugin


@pytest.fixture(autouse=True)
def tasks_registered() -> Iterator[None]:
    """Register dorm-tasks' hooks unless its entry point already did (autoload off)."""
    pm = plugins.get_plugin_manager()
    added = not pm.is_registered(tasks_plugin)
    if added:
        plugins.register(tasks_plugin, name="tasks")
    yield
    if added:
        plugins.unregister(tasks_plugin)
