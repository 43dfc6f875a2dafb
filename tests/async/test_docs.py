"""docs/dataloaders.md, the README and the release note's snippets run as printed, on SQLite."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "dataloaders.md"
README = REPO / "packages" / "dorm-async" / "README.md"
_FENCE = re.compile(r"^```(python)?\n(.*?)^```$", re.M | re.S)


@pytest.fixture
def clean_apps() -> Any:
    yield
    from dorm.apps import apps

    for label in list(apps.all_models):
        if label in ("docs_dataloaders", "readme", "release_note"):
            apps.clear(label)


def test_dataloaders_md_runs_and_prints_what_it_shows(
    fresh_settings: Any, clean_apps: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("litestar")
    pytest.importorskip("dorm.contrib.tasks")
    # The page runs as a module of its own, as a reader's script would: Litestar resolves
    # a handler's annotations from ``sys.modules[handler.__module__]``, and the blocks are
    # compiled without this file's ``from __future__ import annotations``.
    module = types.ModuleType("docs_dataloaders")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    assert _run_page(DOC, module.__dict__) == 10


def _run_page(doc: Path, namespace: dict[str, Any]) -> int:
    """Run ``doc``'s python blocks in ``namespace``; each plain block after a block that
    printed must be what it printed (the rule of the ``run_printed_markdown`` fixture)."""
    pending: str | None = None
    checked = 0
    for lang, code in _FENCE.findall(doc.read_text()):
        if lang == "python":
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(code, str(doc), "exec", dont_inherit=True), namespace)
            pending = printed.getvalue() or None
        elif pending is not None:
            assert pending == code, f"{doc.name}: printed {pending!r}, the page shows {code!r}"
            checked += 1
            pending = None
    return checked


def test_readme_example_runs(fresh_settings: Any, clean_apps: Any) -> None:
    (code,) = [c for lang, c in _FENCE.findall(README.read_text()) if lang == "python"]
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})


SYNC_SNIPPET = """\
loader = SyncDataLoader(lambda ids: Author.objects.in_bulk(ids))
for book in books:
    loader.load(book.author_id)
loader.flush()
for book in books:
    author = loader.load(book.author_id)
"""

BACKGROUND_SNIPPET = """\
from dorm.contrib.background import BackgroundTasks

bg = BackgroundTasks(concurrency=8)
bg.add(send_email, user.email)
bg.add(warm_cache)
await bg.run()
"""


def test_release_note_snippets_run_as_written(fresh_settings: Any, clean_apps: Any) -> None:
    """whats-new-4.3, "SyncDataLoader" and "BackgroundTasks", with only the setup they
    leave out added (models, data, the two functions, and a coroutine around the await)."""
    import dorm
    from dorm.contrib.sync_dataloader import SyncDataLoader
    from dorm.migrations.schema import SchemaEditor
    from dorm.test import assert_num_queries

    dorm.configure(
        DATABASES={"default": {"ENGINE": "sqlite", "NAME": tempfile.mkdtemp() + "/n.db"}}
    )
    namespace: dict[str, Any] = {"__name__": "release_note", "dorm": dorm}
    exec(
        "class Author(dorm.Model):\n"
        "    name = dorm.CharField(max_length=20)\n"
        "class Book(dorm.Model):\n"
        "    author = dorm.ForeignKey(Author, on_delete=dorm.CASCADE)\n",
        namespace,
    )
    author_model, book_model = namespace["Author"], namespace["Book"]
    with SchemaEditor() as editor:
        editor.create_model(author_model)
        editor.create_model(book_model)
    made = author_model.objects.bulk_create([author_model(name=f"a{i}") for i in range(4)])
    book_model.objects.bulk_create([book_model(author=made[i % 4]) for i in range(12)])
    namespace["books"] = list(book_model.objects.order_by("pk"))
    namespace["SyncDataLoader"] = SyncDataLoader
    with assert_num_queries(1):
        exec(SYNC_SNIPPET, namespace)
    assert namespace["author"].name == "a3"  # the last book's author

    sent: list[str] = []

    def send_email(address: str) -> None:
        sent.append(address)

    async def warm_cache() -> None:
        sent.append("warmed")

    class User:
        email = "ann@example.com"

    namespace.update(send_email=send_email, warm_cache=warm_cache, user=User())
    body = "".join(f"    {line}\n" for line in BACKGROUND_SNIPPET.splitlines())
    exec("async def snippet():\n" + body, namespace)
    asyncio.run(namespace["snippet"]())
    assert sorted(sent) == ["ann@example.com", "warmed"]
