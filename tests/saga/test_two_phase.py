"""Two-phase commit across two PostgreSQL databases of a private cluster, and recovery
after a SIGKILL between PREPARE and COMMIT PREPARED."""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm.cli import main
from dorm.contrib.two_phase import (
    DECISION_TABLE,
    TwoPhaseConfigurationError,
    TwoPhaseError,
    coordinator,
    recover,
    two_phase_commit,
)
from dorm.db.connection import reset_connections
from dorm.test import assert_num_queries
from dorm.transaction import atomic, on_commit

pytestmark = pytest.mark.postgres

HERE = Path(__file__).resolve().parent


class Order(dorm.Model):
    sku = dorm.CharField(max_length=40)

    class Meta:
        app_label = "two_phase_tests"
        db_table = "orders"


@pytest.fixture(scope="module")
def cluster(private_pg_cluster: Any) -> Iterator[Any]:
    import psycopg

    for name in ("tp_primary", "tp_warehouse"):
        private_pg_cluster.create_database(name)
    with psycopg.connect(private_pg_cluster.dsn("tp_primary"), autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, sku varchar(40) NOT NULL)")
    with psycopg.connect(private_pg_cluster.dsn("tp_warehouse"), autocommit=True) as conn:
        conn.execute("CREATE TABLE stock (sku text PRIMARY KEY, qty integer NOT NULL)")
        conn.execute(
            "CREATE TABLE reservation (sku text, CONSTRAINT one_per_sku UNIQUE (sku) "
            "DEFERRABLE INITIALLY DEFERRED)"
        )
    yield private_pg_cluster


@pytest.fixture
def dbs(cluster: Any) -> Iterator[dict[str, Any]]:
    databases = {
        "default": cluster.settings("tp_primary"),
        "primary": cluster.settings("tp_primary"),
        "warehouse": cluster.settings("tp_warehouse"),
    }
    sql(cluster, "tp_primary", "DELETE FROM orders")
    sql(cluster, "tp_warehouse", "DELETE FROM stock")
    sql(cluster, "tp_warehouse", "DELETE FROM reservation")
    sql(cluster, "tp_warehouse", "INSERT INTO stock VALUES ('A-1', 10)")
    sql(cluster, "tp_primary", f"DROP TABLE IF EXISTS {DECISION_TABLE}")
    dorm.configure(DATABASES=databases)
    yield databases
    reset_connections()
    dorm.conf.settings._reset()
    for gid, database in sql(cluster, "postgres", "SELECT gid, database FROM pg_prepared_xacts"):
        sql(cluster, database, f"ROLLBACK PREPARED '{gid}'")


def sql(cluster: Any, database: str, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Run ``statement`` on a connection dorm does not manage (committed data only)."""
    import psycopg

    with psycopg.connect(cluster.dsn(database), autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def state(cluster: Any) -> tuple[list[str], int, list[str]]:
    """(orders' skus, stock of A-1, dorm's prepared transactions), as committed."""
    orders = [r[0] for r in sql(cluster, "tp_primary", "SELECT sku FROM orders ORDER BY id")]
    qty = sql(cluster, "tp_warehouse", "SELECT qty FROM stock WHERE sku = 'A-1'")[0][0]
    prepared = [r[0] for r in sql(cluster, "postgres", "SELECT gid FROM pg_prepared_xacts")]
    return orders, qty, prepared


def decisions(cluster: Any) -> list[tuple[str, str]]:
    rows = sql(cluster, "tp_primary", f"SELECT txid, outcome FROM {DECISION_TABLE}")
    return [(r[0], r[1]) for r in rows]


def test_commit_on_both(dbs: Any, cluster: Any) -> None:
    callbacks: list[str] = []
    with two_phase_commit(["primary", "warehouse"]) as txn:
        assert txn.execute("primary", "INSERT INTO orders (sku) VALUES (%s)", ["A-1"]) == 1
        txn.execute("warehouse", "UPDATE stock SET qty = qty - 1 WHERE sku = %s", ["A-1"])
        Order.objects.using("primary").create(sku="by-orm")
        assert txn.fetchall("warehouse", "SELECT qty FROM stock") == [(9,)]
        on_commit(lambda: callbacks.append(str(state(cluster))), using="primary")
        # Not visible to anyone else before COMMIT PREPARED.
        assert state(cluster) == ([], 10, [])
        assert callbacks == []
    assert state(cluster) == (["A-1", "by-orm"], 9, [])
    assert decisions(cluster) == []  # deleted once every alias committed
    # on_commit callbacks run after COMMIT PREPARED, when the data is visible.
    assert callbacks == [str((["A-1", "by-orm"], 9, []))]


def test_an_exception_rolls_back_both(dbs: Any, cluster: Any) -> None:
    with pytest.raises(KeyError), two_phase_commit(["primary", "warehouse"]) as txn:
        txn.execute("primary", "INSERT INTO orders (sku) VALUES (%s)", ["A-1"])
        txn.execute("warehouse", "UPDATE stock SET qty = 0")
        raise KeyError("abort")
    assert state(cluster) == ([], 10, [])


def test_a_failed_prepare_rolls_back_the_prepared_alias(dbs: Any, cluster: Any) -> None:
    """The deferred constraint fails at PREPARE on the second alias, after the first is
    prepared: the first is rolled back (ROLLBACK PREPARED), nothing is committed."""
    with (
        pytest.raises(dorm.exceptions.IntegrityError),
        two_phase_commit(["primary", "warehouse"]) as txn,
    ):
        txn.execute("primary", "INSERT INTO orders (sku) VALUES (%s)", ["A-1"])
        txn.execute("warehouse", "INSERT INTO reservation VALUES ('A-1'), ('A-1')")
    assert state(cluster) == ([], 10, [])
    assert decisions(cluster) == []


def test_statements_only_on_the_block_aliases(dbs: Any, cluster: Any) -> None:
    with (
        pytest.raises(ValueError, match="'default' is not part of this two-phase commit"),
        two_phase_commit(["primary", "warehouse"]) as txn,
    ):
        txn.execute("default", "SELECT 1")
    assert state(cluster) == ([], 10, [])


def test_nested_in_atomic_raises_before_any_statement(dbs: Any, cluster: Any) -> None:
    with (
        atomic(using="primary"),
        assert_num_queries(0, using="primary"),
        pytest.raises(RuntimeError, match="cannot run inside an atomic\\(\\) block"),
        two_phase_commit(["primary", "warehouse"]),
    ):
        pytest.fail("the block must not run")
    # Any open block of this thread counts.
    with atomic(using="default"), pytest.raises(RuntimeError, match="open on 'default'"):
        two_phase_commit(["primary", "warehouse"]).__enter__()
    assert state(cluster) == ([], 10, [])


def test_a_non_postgresql_alias_is_refused_before_any_statement(
    dbs: Any, cluster: Any, tmp_path: Path
) -> None:
    dorm.configure(DATABASES={**dbs, "local": {"ENGINE": "sqlite", "NAME": str(tmp_path / "x.db")}})
    with (
        assert_num_queries(0, using="primary"),
        pytest.raises(TwoPhaseConfigurationError, match="alias 'local' is a sqlite database"),
        two_phase_commit(["primary", "local"]),
    ):
        pytest.fail("the block must not run")
    with pytest.raises(ValueError, match="listed twice"):
        two_phase_commit(["primary", "primary"]).__enter__()
    with pytest.raises(TypeError, match="not the string"):
        two_phase_commit("primary").__enter__()


def run_app(cluster: Any, dbs: Any, mode: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DORM_2PC_TEST_DBS": json.dumps(dbs)}
    return subprocess.run(
        [sys.executable, str(HERE / "twophaseapp.py"), mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_sigkill_after_the_decision_then_recover_commits_both(
    dbs: Any, cluster: Any, capsys: Any
) -> None:
    killed = run_app(cluster, dbs, "after-decision")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    orders, qty, prepared = state(cluster)
    assert (orders, qty) == ([], 10) and len(prepared) == 2
    assert [d[1] for d in decisions(cluster)] == ["commit"]

    assert main(["two-phase", "recover", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("would commit dorm2pc_") == 2
    assert len(state(cluster)[2]) == 2  # a dry run changes nothing

    assert main(["two-phase", "recover"]) == 0
    assert decisions(cluster) == []  # done with: deleted
    out = capsys.readouterr().out
    # "default" and "primary" are one database: each prepared transaction is listed once.
    assert out.count(": commit dorm2pc_") == 2 and "warehouse: commit dorm2pc_" in out
    assert state(cluster) == (["after-decision"], 9, [])


def test_sigkill_before_the_decision_then_recover_rolls_back_both(
    dbs: Any, cluster: Any, capsys: Any
) -> None:
    killed = run_app(cluster, dbs, "before-decision")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(state(cluster)[2]) == 2 and decisions(cluster) == []
    # Younger than --older-than (60 s by default): maybe still in flight, left alone.
    assert main(["two-phase", "recover"]) == 0
    assert capsys.readouterr().out.count("skip (in flight)") == 2
    assert len(state(cluster)[2]) == 2
    assert main(["two-phase", "recover", "--older-than", "0s"]) == 0
    assert capsys.readouterr().out.count(": roll back dorm2pc_") == 2
    assert state(cluster) == ([], 10, [])


def test_recovery_fences_off_a_late_coordinator(
    dbs: Any, cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recovery rolls back a transaction whose coordinator stalled after PREPARE; the
    coordinator's own commit decision then loses on the decision table's key."""
    original = coordinator._PreparingAtomic.__exit__
    seen: list[Any] = []

    def exit_then_recover(self: Any, *args: Any) -> None:
        original(self, *args)
        if self.gid.endswith("_1") and args[0] is None:
            seen.extend(recover(older_than=datetime.timedelta(0)))

    monkeypatch.setattr(coordinator._PreparingAtomic, "__exit__", exit_then_recover)
    with (
        pytest.raises(TwoPhaseError, match="was rolled back: 'dorm two-phase recover'"),
        two_phase_commit(["primary", "warehouse"]) as txn,
    ):
        txn.execute("primary", "INSERT INTO orders (sku) VALUES ('late')")
        txn.execute("warehouse", "UPDATE stock SET qty = 0")
    assert sorted(r.action for r in seen) == ["rollback", "rollback"]
    assert state(cluster) == ([], 10, [])
    assert [d[1] for d in decisions(cluster)] == ["rollback"]


def test_max_prepared_transactions_zero_is_a_clear_error(dbs: Any, cluster: Any) -> None:
    cluster.admin("ALTER SYSTEM SET max_prepared_transactions = 0")
    reset_connections()
    cluster.restart()
    try:
        dorm.configure(DATABASES=dbs)
        with (
            pytest.raises(TwoPhaseConfigurationError, match="max_prepared_transactions = 0"),
            two_phase_commit(["primary", "warehouse"]),
        ):
            pytest.fail("the block must not run")
    finally:
        reset_connections()
        # The cluster keeps its settings in postgresql.auto.conf, which ALTER SYSTEM edits.
        cluster.admin("ALTER SYSTEM SET max_prepared_transactions = 20")
        cluster.restart()
    assert state(cluster) == ([], 10, [])


def test_recovery_leaves_other_programs_prepared_transactions_alone(
    dbs: Any, cluster: Any, capsys: Any
) -> None:
    import psycopg

    with psycopg.connect(cluster.dsn("tp_primary"), autocommit=True) as conn:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO orders (sku) VALUES ('foreign')")
        conn.execute("PREPARE TRANSACTION 'billing_batch_7'")
    assert main(["two-phase", "recover", "--older-than", "0s"]) == 0
    assert "no prepared dorm transactions" in capsys.readouterr().out
    assert state(cluster)[2] == ["billing_batch_7"]
    sql(cluster, "tp_primary", "ROLLBACK PREPARED 'billing_batch_7'")
    assert state(cluster) == ([], 10, [])
