"""docs/routing.md, the README example and the release note's snippet run as printed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from dorm.contrib.active_passive import ActivePassiveRouter

from .conftest import Item, Pair

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "routing.md"
README = REPO / "packages" / "dorm-routing" / "README.md"
_FENCE = re.compile(r"^```(python)?\n(.*?)^```$", re.M | re.S)


@pytest.fixture
def clean_apps() -> Any:
    yield
    from dorm.apps import apps

    for label in ("docs_routing", "readme"):
        if label in apps.all_models:
            apps.clear(label)


@pytest.mark.postgres
def test_routing_md_runs_and_prints_what_it_shows(
    fresh_settings: Any, clean_apps: Any, run_printed_markdown: Any
) -> None:
    assert run_printed_markdown(DOC, "docs_routing") == 4


@pytest.mark.postgres
def test_readme_example_runs(fresh_settings: Any, clean_apps: Any, capsys: Any) -> None:
    (code,) = [c for lang, c in _FENCE.findall(README.read_text()) if lang == "python"]
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out == "['primary', 'replica']\n"


@pytest.mark.postgres
def test_release_note_snippet_runs_as_written(pair: Pair, configure: Any) -> None:
    """whats-new-4.3, "Tier 11": the settings line as written, then routed statements."""
    namespace: dict[str, Any] = {}
    exec(
        "from dorm.contrib.active_passive import ActivePassiveRouter\n"
        "\n"
        "DATABASE_ROUTERS = [\n"
        '    ActivePassiveRouter(aliases=["node_a", "node_b"], probe_seconds=10.0),\n'
        "]\n",
        namespace,
    )
    (router,) = namespace["DATABASE_ROUTERS"]
    assert isinstance(router, ActivePassiveRouter)
    configure(pair, router)
    assert Item.objects.create(name="note")._state.db == "node_a"
    assert Item.objects.all().db == "node_b"
    Item.objects.filter(name="note").delete()
