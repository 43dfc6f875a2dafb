"""The ``pytest11`` entry point of dorm-core: loads dorm's pytest plugin only when asked.

pytest imports every installed ``pytest11`` entry point in every project. This module is
that entry point, and all it does is declare one ini setting, ``dorm_plugin`` (default
false); only a project that sets it to true gets ``dorm.test.pytest_plugin`` (its
fixtures, marker and options). Everywhere else it registers no fixture, hook or marker
and touches no database. ``-p dorm.test.pytest_plugin`` or
``pytest_plugins = ["dorm.test.pytest_plugin"]`` enable the plugin without it, and
``-p no:dorm`` turns this switch off.
"""

from __future__ import annotations

import pytest

_SETTING = "dorm_plugin"
_PLUGIN = "dorm.test.pytest_plugin"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        _SETTING,
        f"load dorm's pytest plugin ({_PLUGIN}: the dorm_db and dorm_postgres fixtures)",
        type="bool",
        default=False,
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    # Registered here, before the command line is parsed for good, the plugin's own
    # options (--dorm-database) are known like those of any installed plugin.
    if early_config.getini(_SETTING):
        early_config.pluginmanager.import_plugin(_PLUGIN)
