"""The plugin written from docs/plugins.md alone: its module and its test run as printed
(SQLite), the module serves the lookup on both backends, and the other snippets run."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm.apps import apps
from dorm.test import register_plugin

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def _blocks(marker: str) -> dict[str, str]:
    found = re.findall(
        rf"^```python\n# {marker}: (\S+)\n(.*?)^```$", DOC.read_text(), flags=re.M | re.S
    )
    return dict(found)


@pytest.fixture
def search_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``dorm_search`` written out from the doc and imported."""
    ((module_name, source),) = _blocks("module").items()
    (tmp_path / module_name).write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    name = module_name.removesuffix(".py")
    yield importlib.import_module(name)
    sys.modules.pop(name, None)


def test_the_documented_plugin_and_its_test_run_as_printed(
    search_module: Any, fresh_settings: None, capsys: pytest.CaptureFixture[str]
) -> None:
    ((_name, test_source),) = _blocks("test").items()
    try:
        exec(compile(test_source, str(DOC), "exec"), {"__name__": "search_doc_test"})
    finally:
        apps.clear("search_example")
    out = capsys.readouterr().out
    assert "search" in out and "dorm_register_lookups" in out  # `dorm plugins` listed it


class Post(dorm.Model):
    body = dorm.TextField()
    title = dorm.CharField(max_length=50, default="")

    class Meta:
        app_label = "t_docs_plugins"


MODELS = [Post]


def test_the_documented_lookup_on_both_backends(db: Any, search_module: Any) -> None:
    Post.objects.create(body="Writing dorm plugins", title="plugins")
    Post.objects.create(body="Migrations, step by step", title="other")
    with register_plugin(search_module, name="search"):
        assert [p.title for p in Post.objects.filter(body__search="PLUGINS")] == ["plugins"]
        assert Post.objects.filter(title__search="migr").count() == 0
        assert Post.objects.filter(body__search=dorm.F("title")).count() == 1  # an expression
        assert Post.objects.exclude(body__search="dorm").get().title == "other"
    Post.objects.all().delete()


def test_the_runtime_registration_snippet_runs() -> None:
    (source,) = [
        block
        for block in re.findall(r"^```python\n(.*?)^```$", DOC.read_text(), flags=re.M | re.S)
        if "class Audit" in block
    ]
    namespace: dict[str, Any] = {}
    exec(compile(source, str(DOC), "exec"), namespace)
    from dorm import plugins

    assert "audit" not in {info.name for info in plugins.plugin_infos()}
