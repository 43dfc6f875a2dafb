"""docs/temporal.md and the release note's snippet run as printed, on SQLite."""

from __future__ import annotations

import datetime
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "temporal.md"
README = REPO / "packages" / "dorm-temporal" / "README.md"
_FENCE = re.compile(r"^```(python)?\n(.*?)^```$", re.M | re.S)


@pytest.fixture
def clean_apps() -> Any:
    yield
    from dorm.apps import apps

    for label in list(apps.all_models):
        if label in ("docs_temporal", "readme", "release_note"):
            apps.clear(label)


def test_temporal_md_runs_and_prints_what_it_shows(
    fresh_settings: Any, clean_apps: Any, run_printed_markdown: Any
) -> None:
    assert run_printed_markdown(DOC, "docs_temporal") == 5


def test_readme_example_runs(fresh_settings: Any, clean_apps: Any) -> None:
    (code,) = [c for lang, c in _FENCE.findall(README.read_text()) if lang == "python"]
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})


def test_release_note_snippet_runs_as_written(fresh_settings: Any, clean_apps: Any) -> None:
    """whats-new-4.3, "Temporal tables", with only the setup it leaves out added."""
    import dorm
    from dorm.migrations.schema import SchemaEditor

    dorm.configure(
        DATABASES={"default": {"ENGINE": "sqlite", "NAME": tempfile.mkdtemp() + "/n.db"}}
    )
    t = datetime.datetime.now(datetime.UTC)
    namespace: dict[str, Any] = {"__name__": "release_note", "dorm": dorm, "t": t}
    exec(
        "from dorm.contrib.temporal import temporal, as_of\n"
        "\n"
        "@temporal\n"
        "class Article(dorm.Model):\n"
        "    title = dorm.CharField(max_length=200)\n",
        namespace,
    )
    article_model = namespace["Article"]
    assert article_model._meta.app_label == "release_note"  # from the module name
    with SchemaEditor() as editor:
        editor.create_model(article_model)
        editor.create_model(article_model._temporal_model)
    article_model.objects.create(id=42, title="first")
    article_model.objects.filter(pk=42).update(title="second")
    exec(
        "snapshot = as_of(Article, t)   # rows valid at time t\n"
        "history = Article.history.filter(pk=42)  # every version\n",
        namespace,
    )
    assert list(namespace["snapshot"]) == []
    assert [(v.operation, v.title) for v in namespace["history"]] == [
        ("insert", "first"),
        ("update", "second"),
    ]
