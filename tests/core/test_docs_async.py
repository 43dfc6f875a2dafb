"""docs/async.md runs as printed on SQLite, and its FastAPI example serves real requests."""

from __future__ import annotations

import sqlite3
import tempfile
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm import plugins
from dorm.apps import apps
from dorm.db.connection import reset_connections
from dorm.plugins import hookimpl

DOC = Path(__file__).resolve().parents[2] / "docs" / "async.md"
NO_RUN = "<!-- no-run -->"

# Starlette's TestClient prefers httpx2 and warns when it falls back to httpx.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Using `httpx` with `starlette.testclient` is deprecated"
)


class WarmupRecorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, bool]] = []

    @hookimpl
    def dorm_pool_warmed(self, alias: str, seconds: float, size: int, is_async: bool) -> None:
        self.calls.append((alias, size, is_async))


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run inside tmp_path (temporary files too); forget the doc's settings, models,
    receivers and plugins afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for name in ("DORM_SETTINGS", "DORM_PROFILE", "DORM_ALLOW_ASYNC_UNSAFE"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path
    for name in ("async-audit", "warmup-recorder"):
        with suppress(ValueError):
            plugins.unregister(name)
    reset_connections()
    dorm.conf.settings._reset()
    apps.clear("shelf")


def rows(db_file: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db_file)) as raw:
        return raw.execute(sql).fetchall()


def test_every_block_of_async_md_runs(doc_tools: Any) -> None:
    markdown = DOC.read_text()
    assert NO_RUN not in markdown, "every python block of docs/async.md must run"
    assert len(doc_tools.python_blocks(markdown)) == markdown.count("```python")


def test_async_md_runs_as_printed(in_tmp: Path, doc_tools: Any) -> None:
    assert len(doc_tools.python_blocks(DOC.read_text())) >= 10

    ns = doc_tools.run_markdown(DOC)

    db_file = ns["db_file"]
    assert isinstance(db_file, Path) and db_file.is_relative_to(in_tmp)
    assert rows(db_file, "SELECT title, pages FROM shelf_book ORDER BY title") == [
        ("A Wizard of Earthsea", 205),
        ("Going Postal", 0),  # posted through the FastAPI app's TestClient block
        ("Mort (new edition)", 274),  # renamed, then +1 by the raw UPDATE
        ("Small Gods", 0),
        ("The Dispossessed", 387),
        ("The Lathe of Heaven", 184),
    ]
    assert rows(db_file, "SELECT name FROM shelf_author ORDER BY name") == [
        ("Terry Pratchett",),
        ("Ursula K. Le Guin",),
    ]
    assert ns["events"] == ["announced Mort (new edition)"]
    assert ns["audit"].deleted == ["Tehanu"]
    assert ns["audit"].warmed == [("default", 5, True)]
    assert len(ns["refused"]) == 2
    assert "use `await Book.objects.aget()`" in ns["refused"][0]
    assert "await Author.objects.aget(pk=book.author_id)" in ns["refused"][1]
    assert ("Going Postal", True) in ns["saved"]  # the coroutine receiver ran in the app


def test_fastapi_example_serves_and_writes(in_tmp: Path, doc_tools: Any) -> None:
    from fastapi.testclient import TestClient

    ns = doc_tools.run_markdown(DOC)
    app, db_file = ns["app"], ns["db_file"]
    recorder = WarmupRecorder()
    plugins.register(recorder, name="warmup-recorder")

    with TestClient(app) as client:
        # The lifespan configured dorm and warmed the server loop's pool.
        assert recorder.calls == [("default", 5, True)]

        created = client.post(
            "/books", json={"title": "Dune", "author": "Frank Herbert", "pages": 412}
        )
        assert created.status_code == 201
        body = created.json()
        assert body == {"id": body["id"], "title": "Dune", "author": "Frank Herbert", "pages": 412}
        assert isinstance(body["id"], int)

        again = client.post("/books", json={"title": "Children of Dune", "author": "Frank Herbert"})
        assert again.status_code == 201 and again.json()["pages"] == 0

        invalid = client.post("/books", json={"title": "No author"})
        assert invalid.status_code == 422

        listing = client.get("/books")
        assert listing.status_code == 200
        books = listing.json()
        assert [b["title"] for b in books] == sorted(b["title"] for b in books)
        assert {"Dune", "Children of Dune", "Going Postal"} <= {b["title"] for b in books}
        dune = next(b for b in books if b["title"] == "Dune")
        assert dune == body

    herbert = rows(db_file, "SELECT id FROM shelf_author WHERE name = 'Frank Herbert'")
    assert len(herbert) == 1  # get_or_create found the author the second time
    assert rows(
        db_file,
        f"SELECT title, pages FROM shelf_book WHERE author_id = {herbert[0][0]} ORDER BY title",
    ) == [("Children of Dune", 0), ("Dune", 412)]
    assert rows(db_file, "SELECT COUNT(*) FROM shelf_book WHERE title = 'No author'") == [(0,)]


def test_fastapi_post_rolls_back_as_one_transaction(in_tmp: Path, doc_tools: Any) -> None:
    """A failing create inside the endpoint's aatomic() also undoes its get_or_create."""
    from fastapi.testclient import TestClient

    ns = doc_tools.run_markdown(DOC)
    Book, db_file = ns["Book"], ns["db_file"]

    def refuse(sender: Any, instance: Any, **kwargs: Any) -> None:
        raise RuntimeError("refused by a pre_save receiver")

    dorm.signals.pre_save.connect(refuse, sender=Book)
    try:
        with TestClient(ns["app"], raise_server_exceptions=False) as client:
            failed = client.post("/books", json={"title": "Emma", "author": "Jane Austen"})
    finally:
        dorm.signals.pre_save.disconnect(refuse, sender=Book)
    assert failed.status_code == 500
    assert rows(db_file, "SELECT COUNT(*) FROM shelf_author WHERE name = 'Jane Austen'") == [(0,)]
    assert rows(db_file, "SELECT COUNT(*) FROM shelf_book WHERE title = 'Emma'") == [(0,)]
