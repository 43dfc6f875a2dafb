"""``dorm temporal status`` and ``dorm temporal prune``."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

import dorm
from dorm.cli import main
from dorm.contrib.temporal import temporal
from dorm.contrib.temporal.commands import parse_age
from dorm.contrib.temporal.triggers import install_statements
from dorm.db.connection import get_connection


@temporal
class Doc(dorm.Model):
    name = dorm.CharField(max_length=20)
    rev = dorm.IntegerField(default=0)

    class Meta:
        app_label = "temporal_cli"


DocTemporal = Doc._temporal_model
MODELS = [DocTemporal, Doc]
LABEL = "temporal_cli.Doc"

pytestmark = pytest.mark.usefixtures("clean_tables")


def test_status_counts_versions_and_checks_triggers(db: Any, capsys: Any) -> None:
    doc = Doc.objects.create(name="a")
    doc.rev = 1
    doc.save()
    assert main(["temporal", "status", "--model", LABEL]) == 0
    assert "temporal_cli.Doc: 2 version(s), 1 current, triggers ok" in capsys.readouterr().out

    conn = get_connection()
    qn = conn.ops.quote_name
    table = Doc._meta.db_table
    try:
        if db.vendor == "sqlite":
            conn.execute(f"DROP TRIGGER {qn(table + '_temporal_update')}")
        else:
            conn.execute(f"DROP TRIGGER {qn(table + '_temporal_update')} ON {qn(table)}")
        assert main(["temporal", "status", "--model", LABEL]) == 1
        assert f"ERROR trigger {table}_temporal_update is missing" in capsys.readouterr().out
        # An outdated trigger: one that no longer writes what this version writes.
        if db.vendor == "sqlite":
            name = qn(table + "_temporal_insert")
            conn.execute(f"DROP TRIGGER {name}")
            conn.execute(f"CREATE TRIGGER {name} AFTER INSERT ON {qn(table)} BEGIN SELECT 1; END")
        else:
            conn.execute(
                f"CREATE OR REPLACE FUNCTION {qn(table + '_temporal_fn')}() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$"
            )
        assert main(["temporal", "status", "--model", LABEL]) == 1
        assert "outdated" in capsys.readouterr().out
    finally:
        for sql in install_statements(conn, Doc):
            conn.execute(sql)
    assert main(["temporal", "status", "--model", LABEL]) == 0


def test_prune_deletes_old_closed_versions_only(db: Any, capsys: Any) -> None:
    docs = [Doc.objects.create(name=f"d{i}") for i in range(3)]
    for doc in docs:
        for rev in (1, 2):
            doc.rev = rev
            doc.save()
    Doc.objects.filter(pk=docs[0].pk).delete()
    # 3 x (insert, 2 updates) + 1 delete = 10 versions: 8 closed (tombstone included), 2 current.
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=100)
    closed = DocTemporal.objects.filter(valid_to__isnull=False)
    assert closed.count() == 8
    recent = closed.order_by("-history_id").first()
    closed.exclude(history_id=recent.history_id).update(valid_to=old)  # no trigger there
    assert (
        main(["temporal", "prune", "--older-than", "90d", "--model", LABEL, "--batch-size", "2"])
        == 0
    )
    assert "temporal_cli.Doc: 7 version(s) deleted" in capsys.readouterr().out
    left = list(DocTemporal.objects.values_list("history_id", "valid_to"))
    assert len(left) == 3
    assert [v for _h, v in left].count(None) == 2  # both current versions stay
    assert Doc.objects.count() == 2
    assert main(["temporal", "prune", "--older-than", "soon"]) == 1
    assert "expected a number and a unit" in capsys.readouterr().err


def test_parse_age() -> None:
    assert parse_age("90d") == datetime.timedelta(days=90)
    assert parse_age("12h") == datetime.timedelta(hours=12)
    with pytest.raises(ValueError, match="unit"):
        parse_age("90")
