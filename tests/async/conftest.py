"""Fixtures for the dorm-async tests: the plugin is registered for every test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dorm.contrib.sync_dataloader import plugin as async_plugin


@pytest.fixture(autouse=True)
def async_registered(register_plugin: Callable[[Any, str], None]) -> None:
    """The plugin's entry (it has no hooks; its entry point may already have registered it)."""
    register_plugin(async_plugin, "async")
