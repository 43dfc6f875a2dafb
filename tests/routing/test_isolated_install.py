"""dorm-routing works in a virtual environment that holds only dorm-core and dorm-routing.

The wheels are built here; their dependencies (and pytest, to run the plugin's own tests
there) are copied from this environment, so the test needs no network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

SCRIPT = """
from dorm.contrib.active_passive import ActivePassiveRouter, NoPrimaryError
from dorm.exceptions import OperationalError
router = ActivePassiveRouter(aliases=["node_a", "node_b"], probe_seconds=10.0)
print(router, issubclass(NoPrimaryError, OperationalError))
for name in ("tasks", "temporal"):
    try:
        __import__("dorm.contrib." + name)
    except ImportError:
        print("no", name)
"""


def test_core_and_routing_alone_in_a_fresh_venv(tmp_path: Path, isolated_venv: Any) -> None:
    venv = isolated_venv(
        ["dorm-core", "dorm-routing"],
        deps=["pluggy", "greenlet", "psycopg", "psycopg-binary", "psycopg-pool", "pytest"],
        install=["dorm-core", "dorm-routing"],
    )
    assert venv.script_lines(SCRIPT, tmp_path) == [
        "ActivePassiveRouter(aliases=['node_a', 'node_b']) True",
        "no tasks",
        "no temporal",
    ]
    helptext = venv.dorm_help(tmp_path)
    assert "routing" in helptext and "temporal" not in helptext
    # The plugin's own configuration and CLI tests (the PostgreSQL pair's run above).
    repo = Path(__file__).resolve().parents[2]
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not postgres"]
    args.append("tests/routing/test_commands.py")
    result = venv.run(str(venv.python), *args, cwd=repo)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout
    venv.assert_installed("dorm.contrib.active_passive", tmp_path)
