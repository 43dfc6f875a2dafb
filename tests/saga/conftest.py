"""Fixtures for the dorm-saga tests: the plugin is registered for every test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dorm.contrib.saga import plugin as saga_plugin


@pytest.fixture(autouse=True)
def saga_registered(register_plugin: Callable[[Any, str], None]) -> None:
    """The plugin's hooks for every test (its entry point may already have them)."""
    register_plugin(saga_plugin, "saga")
