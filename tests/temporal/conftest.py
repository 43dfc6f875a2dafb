"""Fixtures for the dorm-temporal tests: the plugin is registered for every test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dorm.contrib.temporal import plugin as temporal_plugin


@pytest.fixture(autouse=True)
def temporal_registered(register_plugin: Callable[[Any, str], None]) -> None:
    """The plugin's hooks for every test (its entry point may already have them)."""
    register_plugin(temporal_plugin, "temporal")
