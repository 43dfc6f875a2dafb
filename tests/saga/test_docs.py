"""docs/saga.md, docs/inbox-and-locks.md, the README and the release note's snippets run
as printed: the SQLite parts here, the two-phase part on PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SAGA_DOC = REPO / "docs" / "saga.md"
LOCKS_DOC = REPO / "docs" / "inbox-and-locks.md"
README = REPO / "packages" / "dorm-saga" / "README.md"
_FENCE = re.compile(r"^```(python)?\n(.*?)^```$", re.M | re.S)
_APPS = ("docs_saga", "docs_inbox", "shop", "release_note", "readme")


@pytest.fixture
def clean_apps() -> Iterator[None]:
    yield
    from dorm.apps import apps

    for label in list(apps.all_models):
        if label in _APPS:
            apps.clear(label)


def _part(doc: Path, tmp_path: Path, sagas: bool) -> Path:
    text = doc.read_text()
    head, _sep, tail = text.partition("## Two-phase commit")
    out = tmp_path / ("sagas.md" if sagas else "two_phase.md")
    out.write_text(head if sagas else tail)
    return out


def test_saga_md_runs_as_printed(
    fresh_settings: Any, clean_apps: None, run_printed_markdown: Any, tmp_path: Path
) -> None:
    assert run_printed_markdown(_part(SAGA_DOC, tmp_path, sagas=True), "docs_saga") == 3


def test_inbox_and_locks_md_runs_as_printed(
    fresh_settings: Any, clean_apps: None, run_printed_markdown: Any
) -> None:
    assert run_printed_markdown(LOCKS_DOC, "docs_inbox") == 7


@pytest.mark.postgres
def test_saga_md_two_phase_part_runs_on_postgresql(
    fresh_settings: Any, pg_cluster: Any, run_printed_markdown: Any, tmp_path: Path
) -> None:
    import psycopg

    import dorm
    from dorm.db.connection import reset_connections

    for name in ("docs_2pc_primary", "docs_2pc_warehouse"):
        pg_cluster.create_database(name)
    with psycopg.connect(pg_cluster.dsn("docs_2pc_primary"), autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, sku text)")
    with psycopg.connect(pg_cluster.dsn("docs_2pc_warehouse"), autocommit=True) as conn:
        conn.execute("CREATE TABLE stock (sku text PRIMARY KEY, qty integer)")
        conn.execute("INSERT INTO stock VALUES ('A-1', 10)")
    dorm.configure(
        DATABASES={
            "default": pg_cluster.settings("docs_2pc_primary"),
            "primary": pg_cluster.settings("docs_2pc_primary"),
            "warehouse": pg_cluster.settings("docs_2pc_warehouse"),
        }
    )
    try:
        assert run_printed_markdown(_part(SAGA_DOC, tmp_path, sagas=False), "docs_2pc") == 1
    finally:
        reset_connections()
        for name in ("docs_2pc_primary", "docs_2pc_warehouse"):
            pg_cluster.drop_database(name)


def test_readme_example_runs(fresh_settings: Any, clean_apps: None, capsys: Any) -> None:
    (code,) = [c for lang, c in _FENCE.findall(README.read_text()) if lang == "python"]
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out.splitlines() == [
        "False ship ['charge'] ['charge']",
        "['charge', 'refund', 'paid']",
    ]


def test_release_note_inbox_and_concurrency_snippets(
    fresh_settings: Any, clean_apps: None, tmp_path: Path
) -> None:
    """Tier 4 "Inbox" and Tier 8 as printed, with the names they leave to the reader
    (a run_nightly_report, a transfer_money, an account) defined around them."""
    import dorm
    from dorm.migrations.schema import SchemaEditor

    dorm.configure(DATABASES={"default": {"ENGINE": "sqlite", "NAME": str(tmp_path / "note.db")}})
    from dorm.contrib.inbox import InboxRecord, idempotent

    class Inbox(InboxRecord):
        class Meta:
            app_label = "release_note"
            db_table = "inbox"

    @idempotent(Inbox)
    def handle_payment(message_id: str, payload: dict[str, Any]) -> None: ...

    from dorm.contrib.concurrency import (
        SerializableSnapshot,
        named_lock,
        with_optimistic_lock,
    )

    reports: list[str] = []

    def run_nightly_report() -> None:
        reports.append("ran")

    # Distributed mutex (PG advisory lock; in-proc fallback elsewhere).
    with named_lock("nightly-report"):
        run_nightly_report()

    class Account(dorm.Model):
        balance = dorm.DecimalField(max_digits=12, decimal_places=2)
        version = dorm.IntegerField(default=0)

        class Meta:
            app_label = "release_note"

    with SchemaEditor() as editor:
        editor.create_model(Inbox)
        editor.create_model(Account)
    account = Account.objects.create(balance=Decimal("5.00"))

    def transfer_money() -> None:
        Account.objects.filter(pk=account.pk).update(balance=dorm.F("balance") + 1)

    # SERIALIZABLE block with auto-retry on 40001.
    SerializableSnapshot(max_attempts=5).run(transfer_money)

    account = Account.objects.get(pk=account.pk)
    account.balance += 1
    with_optimistic_lock(account)  # raises OptimisticLockError if stale

    assert handle_payment("m-1", {"amount": 1}) is None
    assert handle_payment("m-1", {"amount": 1}) is None
    assert Inbox.objects.count() == 1 and reports == ["ran"]
    fresh = Account.objects.get(pk=account.pk)
    assert (fresh.balance, fresh.version) == (Decimal("7.00"), 2)
