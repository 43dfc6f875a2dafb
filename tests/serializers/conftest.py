"""Fixtures for the dorm-serializers tests: the plugin (and dorm-fields, where installed)
registered for every test."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest

from dorm.contrib.serializers import plugin as serializers_plugin


@pytest.fixture(autouse=True)
def serializers_registered(register_plugin: Callable[[Any, str], None]) -> None:
    """The plugins' hooks for every test (their entry points may already have them).

    dorm-fields is optional here: the isolated-install test runs these tests in a venv
    that holds only dorm-core and dorm-serializers.
    """
    register_plugin(serializers_plugin, "serializers")
    try:
        fields_plugin = importlib.import_module("dorm.contrib.extra_fields.plugin")
    except ImportError:
        return
    register_plugin(fields_plugin, "extra_fields")
