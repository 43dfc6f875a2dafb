"""Fixtures for the dorm-fields tests: the plugin is registered for every test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dorm.contrib.extra_fields import plugin as extra_fields_plugin


@pytest.fixture(autouse=True)
def extra_fields_registered(register_plugin: Callable[[Any, str], None]) -> None:
    """The plugin's hooks for every test (its entry point may already have them)."""
    register_plugin(extra_fields_plugin, "extra_fields")
