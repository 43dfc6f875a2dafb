"""SearchVectorField on SQLite keys the FTS5 table by the model's integer primary key."""

from __future__ import annotations

from typing import Any

import pytest

import dorm
from dorm.contrib.pgvector import PgvectorError, SearchVectorField
from dorm.migrations.schema import SchemaEditor


def test_sqlite_needs_an_integer_primary_key(fresh_settings: Any, tmp_path: Any) -> None:
    class Keyed(dorm.Model):
        code = dorm.CharField(max_length=10, primary_key=True)
        text = dorm.TextField()
        search_vector = SearchVectorField(source_fields=["text"])

        class Meta:
            app_label = "pgv_fulltext"

    dorm.configure(DATABASES={"default": {"ENGINE": "sqlite", "NAME": str(tmp_path / "k.db")}})
    with (
        pytest.raises(
            PgvectorError,
            match=r"Keyed\.search_vector: a SearchVectorField on SQLite "
            r"needs an integer primary key .* code is a CharField",
        ),
        SchemaEditor() as editor,
    ):
        editor.create_model(Keyed)
