"""The backend fixtures themselves: a per-module SQLite file and the private PostgreSQL cluster."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def test_backend_matrix_reaches_a_private_database(backend: Any) -> None:
    if backend.vendor == "sqlite":
        path = Path(backend.settings["NAME"])
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS probe (v TEXT)")
            conn.execute("INSERT INTO probe VALUES (?)", ("sqlite-probe",))
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT v FROM probe").fetchall() == [("sqlite-probe",)]
        assert backend.settings["ENGINE"] == "sqlite"
        return
    import psycopg

    settings = backend.settings
    assert settings["ENGINE"] == "postgresql" and settings["HOST"] == "127.0.0.1"
    assert settings["PORT"] != 5432  # never the machine's shared cluster
    with psycopg.connect(backend.pg.dsn) as conn:
        row = conn.execute(
            "SELECT current_database(), host(inet_server_addr()), inet_server_port(), "
            "current_setting('max_prepared_transactions')::int, current_setting('TimeZone')"
        ).fetchone()
    assert row == (settings["NAME"], "127.0.0.1", settings["PORT"], 20, "UTC")
    assert settings["NAME"].startswith("t_test_backends_")


@pytest.mark.postgres
def test_cluster_listens_on_loopback_only_and_supports_two_phase_commit(pg_database: Any) -> None:
    import psycopg

    with psycopg.connect(pg_database.dsn, autocommit=True) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        conn.execute("CREATE TABLE IF NOT EXISTS twopc (v int)")
    with psycopg.connect(pg_database.dsn) as conn:
        conn.tpc_begin(conn.xid(1, "dorm-test", "branch"))
        conn.execute("INSERT INTO twopc VALUES (42)")
        conn.tpc_prepare()
        conn.tpc_commit()
    with psycopg.connect(pg_database.dsn) as conn:
        assert conn.execute("SELECT v FROM twopc").fetchall() == [(42,)]


@pytest.mark.postgres
def test_cluster_restart_cuts_connections_and_comes_back(pg_database: Any) -> None:
    import psycopg

    conn = psycopg.connect(pg_database.dsn, autocommit=True)
    try:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        pg_database.cluster.restart()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    finally:
        conn.close()
    with psycopg.connect(pg_database.dsn) as fresh:
        assert fresh.execute("SELECT 2").fetchone() == (2,)


@pytest.mark.parametrize(
    ("ci", "code", "summary"),
    [("", 0, "1 skipped"), ("true", 1, "1 error")],
    ids=["local-skips", "ci-fails"],
)
def test_missing_server_skips_locally_and_fails_under_ci(ci: str, code: int, summary: str) -> None:
    env = {
        **os.environ,
        "DORM_PG_BINDIR": "/nonexistent/bin",
        "CI": ci,
        "DORM_REQUIRE_POSTGRES": "",
    }
    target = f"{__file__}::test_cluster_listens_on_loopback_only_and_supports_two_phase_commit"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", target],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == code, result.stdout
    assert summary in result.stdout
    reason = "PostgreSQL is required here" if ci else "no PostgreSQL test server"
    assert reason in result.stdout and "/nonexistent/bin" in result.stdout
