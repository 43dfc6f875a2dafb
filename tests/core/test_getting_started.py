"""docs/getting-started.md runs as printed: its python blocks are executed in order."""

from __future__ import annotations

import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm.apps import apps
from dorm.db.connection import reset_connections

DOC = Path(__file__).resolve().parents[2] / "docs" / "getting-started.md"
NO_RUN = "<!-- no-run -->"


@pytest.fixture
def library_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run inside tmp_path (temporary files too); forget the doc's settings and models after."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for name in ("DORM_SETTINGS", "DORM_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path
    reset_connections()
    dorm.conf.settings._reset()
    apps.clear("library")


def test_parser_skips_blocks_marked_no_run(doc_tools: Any) -> None:
    text = (
        "a\n```python\nx = 1\n```\n"
        "<!-- no-run -->\n```python\ny = 2\n```\n"
        "- item\n\n  ```python\n  z = 3\n  ```\n"
    )
    assert [code for _line, code in doc_tools.python_blocks(text)] == ["x = 1\n", "z = 3\n"]


def test_getting_started_runs_as_printed(library_app: Path, doc_tools: Any) -> None:
    markdown = DOC.read_text()
    blocks = doc_tools.python_blocks(markdown)
    assert len(blocks) >= 10, "the walkthrough lost its python blocks"
    assert markdown.count(NO_RUN) <= 3, "keep no-run blocks few: the doc should run"

    namespace = doc_tools.run_markdown(DOC)

    # The database is where the doc says, inside the temporary directory, and holds the
    # walkthrough's rows.
    db_file = namespace["db_file"]
    assert isinstance(db_file, Path) and db_file.is_relative_to(library_app)
    with closing(sqlite3.connect(db_file)) as raw:
        titles = [r[0] for r in raw.execute("SELECT title FROM book ORDER BY title")]
        authors = [r[0] for r in raw.execute("SELECT name FROM library_author ORDER BY name")]
        tags = raw.execute("SELECT COUNT(*) FROM library_tag").fetchone()[0]
    assert titles == [
        "A Wizard of Earthsea",
        "Guards! Guards!",
        "Lathe of Heaven",
        "Mort",
        "Small Gods",
        "The Dispossessed",
    ]
    assert authors == ["Terry Pratchett", "Ursula K. Le Guin"]
    assert tags == 4

    Book = namespace["Book"]
    earthsea = Book.objects.get(title="A Wizard of Earthsea")
    assert earthsea.in_stock == 2  # one sold in the transactions section
    assert sorted(t.name for t in earthsea.tags.all()) == ["classic", "fantasy"]
    with closing(sqlite3.connect(db_file.with_name("archive.db"))) as raw:
        assert raw.execute("SELECT name FROM library_tag").fetchall() == [("poetry",)]
