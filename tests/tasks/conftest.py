"""Fixtures for the dorm-tasks tests: the plugin is registered for every test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dorm.contrib.tasks import plugin as tasks_plugin


@pytest.fixture(autouse=True)
def tasks_registered(register_plugin: Callable[[Any, str], None]) -> None:
    """The plugin's hooks for every test (its entry point may already have them)."""
    register_plugin(tasks_plugin, "tasks")
