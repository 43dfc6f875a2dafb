"""Failover on a real pair: the standby is promoted and the old primary stopped (or made
read-only) mid-test; writes reach the new primary after one failed write and one probe."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from dorm.contrib.active_passive import ActivePassiveRouter
from dorm.exceptions import DatabaseError, OperationalError

from .conftest import Item, Pair, wait_replicated

pytestmark = pytest.mark.postgres


def _count(pair: Pair, cluster: Any, name: str) -> int:
    return int(
        pair.sql(cluster, 'SELECT count(*) FROM "routing_tests_item" WHERE "name" = %s', (name,))
    )


def test_promote_and_stop_old_primary(
    own_pair: Pair, configure: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dorm.contrib.active_passive")
    # probe_seconds far beyond the test: only the re-probe after the failure can help.
    router = configure(
        own_pair, ActivePassiveRouter(aliases=["node_a", "node_b"], probe_seconds=300.0)
    )
    Item.objects.create(name="before")
    wait_replicated(own_pair, "before")
    assert Item.objects.all().db == "node_b"

    own_pair.standby.promote()
    own_pair.primary.pause()  # stopped: its pooled connections are cut
    with pytest.raises(OperationalError):
        Item.objects.create(name="lost")  # the one failed write: not retried elsewhere
    assert any("marked stale" in r.getMessage() for r in caplog.records)

    started = time.monotonic()
    item = Item.objects.create(name="after")
    assert item._state.db == "node_b"
    assert time.monotonic() - started < 30  # the re-probe, not the 300 s schedule
    assert _count(own_pair, own_pair.standby, "after") == 1
    assert _count(own_pair, own_pair.standby, "lost") == 0  # the router retried nothing
    statuses = {s.alias: s for s in router.status()}
    assert statuses["node_b"].role == "primary"
    assert statuses["node_a"].role == "down" and statuses["node_a"].error
    # No replica left: reads go to the new primary and see the new write.
    assert Item.objects.all().db == "node_b"
    assert sorted(Item.objects.values_list("name", flat=True)) == ["after", "before"]


def test_primary_turned_read_only_is_left_for_the_promoted_standby(
    own_pair: Pair, configure: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dorm.contrib.active_passive")
    router = configure(
        own_pair, ActivePassiveRouter(aliases=["node_a", "node_b"], probe_seconds=300.0)
    )
    Item.objects.create(name="one")
    own_pair.standby.promote()  # two writable servers: the router keeps node_a
    assert Item.objects.create(name="two")._state.db == "node_a"
    own_pair.sql(own_pair.primary, "ALTER SYSTEM SET default_transaction_read_only = on")
    own_pair.sql(own_pair.primary, "SELECT pg_reload_conf()")
    deadline = time.monotonic() + 20
    while own_pair.sql(own_pair.primary, "SHOW default_transaction_read_only") != "on":
        assert time.monotonic() < deadline
        time.sleep(0.02)

    with pytest.raises(DatabaseError, match="read-only transaction"):
        Item.objects.create(name="refused")  # the pooled session took the new default
    item = Item.objects.create(name="three")
    assert item._state.db == "node_b"
    assert _count(own_pair, own_pair.standby, "three") == 1
    assert _count(own_pair, own_pair.primary, "refused") == 0
    assert {s.alias: s.role for s in router.status()} == {
        "node_a": "read-only",
        "node_b": "primary",
    }
    messages = [r.getMessage() for r in caplog.records]
    assert any("'node_a' marked stale" in m and "25006" in m for m in messages)
    assert any("'node_a' is now read-only (was primary)" in m for m in messages)
