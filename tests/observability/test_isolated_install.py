"""dorm-observability works in a virtual environment holding only dorm-core and itself.

The wheels are built here; their dependencies (and pytest and the OpenTelemetry SDK, to
run the plugin's own tests there) are copied from this environment: no network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

SCRIPT = """
import tempfile
import dorm
from prometheus_client import CollectorRegistry
from dorm.contrib import plan_drift, prometheus, slow_tx
from dorm.contrib.nplusone import detect
from dorm.contrib.row_cache import RowCache
from dorm.migrations.schema import SchemaEditor

class Page(dorm.Model):
    title = dorm.CharField(max_length=20)
    class Meta:
        app_label = "demo"

dorm.configure(DATABASES={"default": {"ENGINE": "sqlite",
                                      "NAME": tempfile.mkdtemp() + "/db.sqlite3"}},
               PLAN_DRIFT_PATH=tempfile.mkdtemp() + "/plans.json")
with SchemaEditor() as editor:
    editor.create_model(Page)
registry = CollectorRegistry()
prometheus.install(registry)
slow_tx.install(threshold_ms=500)
page = Page.objects.create(title="a")
cache = RowCache(Page)
print(cache.get(page.pk).title, cache.get(page.pk).title, cache.hits)
print(registry.get_sample_value("dorm_queries_total", {"alias": "default", "operation": "insert"}))
print(plan_drift.record_baseline("pk", "SELECT title FROM demo_page WHERE id = ?", [1]) != "")
with detect(log=False) as scope:
    for _ in range(3):
        Page.objects.get(pk=page.pk)
print(len(scope.findings))
for name in ("tasks", "temporal"):
    try:
        __import__("dorm.contrib." + name)
    except ImportError:
        print("no", name)
"""


def test_core_and_observability_alone_in_a_fresh_venv(tmp_path: Path, isolated_venv: Any) -> None:
    venv = isolated_venv(
        ["dorm-core", "dorm-observability"],
        deps=["pluggy", "greenlet", "pytest", "prometheus_client", "opentelemetry-sdk"],
        install=["dorm-core", "dorm-observability"],
    )
    assert venv.script_lines(SCRIPT, tmp_path) == [
        "a a 1",
        "1.0",
        "True",
        "1",
        "no tasks",
        "no temporal",
    ]
    helptext = venv.dorm_help(tmp_path)
    assert "plan-drift" in helptext and "worker" not in helptext
    # The plugin's own tests, SQLite half, with only dorm-core and dorm-observability.
    venv.run_sqlite_tests("tests/observability")
    venv.assert_installed("dorm.contrib.prometheus", tmp_path)
    venv.assert_installed("dorm.contrib.nplusone", tmp_path)
