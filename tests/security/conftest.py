"""Fixtures for the dorm-security tests: the plugin is registered for every test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dorm.contrib.anonymizer import plugin as security_plugin


@pytest.fixture(autouse=True)
def security_registered(register_plugin: Callable[[Any, str], None]) -> None:
    """The plugin's hooks for every test (its entry point may already have them)."""
    register_plugin(security_plugin, "security")
