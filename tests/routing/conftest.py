"""Fixtures for the dorm-routing tests: a real primary with a streaming hot standby.

The standby is made from the primary with ``pg_basebackup -R`` on loopback
(``PgCluster.start_replica``) and is streaming before any test runs. The routing tests
share one pair per module; each failover test gets a pair of its own, since it promotes
the standby and stops the primary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

import dorm
from dorm.contrib.active_passive import plugin as routing_plugin
from dorm.test.postgres import PgCluster, PostgresUnavailableError, postgres_required, start_cluster

DB = "routing"


class Item(dorm.Model):
    name = dorm.CharField(max_length=40)

    class Meta:
        app_label = "routing_tests"


@dataclass
class Pair:
    """A primary and its hot standby, both holding the database ``routing``."""

    primary: PgCluster
    standby: PgCluster

    def databases(self, **extra: dict[str, Any]) -> dict[str, Any]:
        """``DATABASES`` with node_a on the primary and node_b on the standby; a failing
        server is given up on after 2 s (POOL_TIMEOUT), not the default 30."""
        pool = {"POOL_TIMEOUT": 2, "MIN_POOL_SIZE": 1, "MAX_POOL_SIZE": 6}
        return {
            "node_a": {**self.primary.settings(DB), **pool},
            "node_b": {**self.standby.settings(DB), **pool},
            **extra,
        }

    def sql(self, cluster: PgCluster, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """One statement on ``cluster``'s database outside dorm; the first column of the
        first row, if any."""
        with psycopg.connect(cluster.dsn(DB), autocommit=True) as conn:
            cur = conn.execute(sql, params)
            row = cur.fetchone() if cur.description else None
            return None if row is None else row[0]


def make_pair() -> Pair:
    try:
        primary = start_cluster()
    except PostgresUnavailableError as exc:
        if postgres_required():
            pytest.fail(f"PostgreSQL is required here (CI=true / DORM_REQUIRE_POSTGRES=1): {exc}")
        pytest.skip(f"no PostgreSQL test server: {exc}")
    try:
        primary.create_database(DB)
        with psycopg.connect(primary.dsn(DB), autocommit=True) as conn:
            conn.execute(
                'CREATE TABLE "routing_tests_item" ("id" bigserial PRIMARY KEY, '
                '"name" varchar(40) NOT NULL)'
            )
        standby = primary.start_replica()
    except BaseException:
        primary.stop()
        raise
    return Pair(primary, standby)


def stop_pair(pair: Pair) -> None:
    pair.standby.stop()
    pair.primary.stop()


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    """The module's primary and standby."""
    made = make_pair()
    yield made
    stop_pair(made)


@pytest.fixture
def own_pair() -> Iterator[Pair]:
    """A primary and standby of the test's own, for failover drills."""
    made = make_pair()
    yield made
    stop_pair(made)


@pytest.fixture(autouse=True)
def routing_registered(register_plugin: Callable[[Any, str], None]) -> None:
    """The plugin's hooks (its CLI command) for every test."""
    register_plugin(routing_plugin, "routing")


@pytest.fixture
def configure() -> Iterator[Callable[..., Any]]:
    """``configure(pair, router, **extra_databases)``: dorm set up with the router; the
    router closed and the settings reset afterwards."""
    from dorm.conf import settings
    from dorm.db.connection import reset_connections

    routers: list[Any] = []

    def setup(pair: Pair, router: Any, **extra: dict[str, Any]) -> Any:
        routers.append(router)
        dorm.configure(DATABASES=pair.databases(**extra), DATABASE_ROUTERS=[router])
        return router

    yield setup
    for router in routers:
        router.close()
    reset_connections()
    settings._reset()


def wait_replicated(pair: Pair, name: str, timeout: float = 20.0) -> None:
    """Block until the standby has replayed the row called ``name``."""
    import time

    deadline = time.monotonic() + timeout
    while not pair.sql(
        pair.standby, 'SELECT count(*) FROM "routing_tests_item" WHERE "name" = %s', (name,)
    ):
        assert time.monotonic() < deadline, f"{name!r} never reached the standby"
        time.sleep(0.02)
