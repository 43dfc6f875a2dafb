"""docs/serializers.md, the README example and the release note's snippet run as printed."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "serializers.md"
README = REPO / "packages" / "dorm-serializers" / "README.md"
_FENCE = re.compile(r"^```(python)?\n(.*?)^```$", re.M | re.S)


@pytest.fixture
def clean_apps() -> Any:
    yield
    from dorm.apps import apps

    for label in list(apps.all_models):
        if label in ("docs_serializers", "readme", "release_note"):
            apps.clear(label)


@pytest.fixture
def clean_plugins() -> Any:
    from dorm import plugins

    yield
    rgb = plugins.get_plugin_manager().get_plugin("rgb")
    if rgb is not None:
        plugins.unregister(rgb)


def test_serializers_md_runs_and_prints_what_it_shows(
    fresh_settings: Any, clean_apps: Any, clean_plugins: Any, run_printed_markdown: Any
) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    assert run_printed_markdown(DOC, "docs_serializers") == 8


def test_readme_example_runs_and_prints_what_it_shows(
    fresh_settings: Any, clean_apps: Any, run_printed_markdown: Any
) -> None:
    assert run_printed_markdown(README, "readme") == 1


def test_release_note_snippet_runs_as_written(fresh_settings: Any, clean_apps: Any) -> None:
    """whats-new-4.3, "Tier 12", with only the setup it leaves out added."""
    import dorm
    from dorm.migrations.schema import SchemaEditor

    dorm.configure(
        DATABASES={"default": {"ENGINE": "sqlite", "NAME": tempfile.mkdtemp() + "/n.db"}}
    )
    namespace: dict[str, Any] = {"__name__": "release_note", "dorm": dorm}
    exec("class Article(dorm.Model):\n    title = dorm.CharField(max_length=200)\n", namespace)
    with SchemaEditor() as editor:
        editor.create_model(namespace["Article"])
    namespace["Article"].objects.create(title="hello")
    exec(
        "from dorm.contrib.serializers import (\n"
        "    stream_msgpack, avro_schema_for, openapi_schema_for,\n"
        ")\n"
        "\n"
        "def export():\n"
        "    # Streaming MessagePack (requires `pip install msgpack`):\n"
        "    for chunk in stream_msgpack(Article.objects.iterator()):\n"
        "        yield chunk\n"
        "\n"
        "avro_schema = avro_schema_for(Article)\n"
        "openapi_components = {\n"
        '    "schemas": {\n'
        '        "Article": openapi_schema_for(Article),\n'
        "    }\n"
        "}\n",
        namespace,
    )
    from dorm.contrib.serializers import iter_msgpack

    (copy,) = iter_msgpack(namespace["export"](), namespace["Article"])
    assert copy.title == "hello"
    assert namespace["avro_schema"]["fields"][1] == {"name": "title", "type": "string"}
    article = namespace["openapi_components"]["schemas"]["Article"]
    assert article["properties"]["title"] == {"type": "string", "maxLength": 200}
