"""``dorm routing status``, and the configuration errors found at first use."""

from __future__ import annotations

from typing import Any

import pytest

import dorm
from dorm.cli import main
from dorm.contrib.active_passive import ActivePassiveRouter
from dorm.exceptions import ImproperlyConfigured

from .conftest import Item, Pair


@pytest.mark.postgres
def test_status_prints_role_lag_and_last_probe(pair: Pair, configure: Any, capsys: Any) -> None:
    configure(pair, ActivePassiveRouter(aliases=["node_a", "node_b"]))
    assert main(["routing", "status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ActivePassiveRouter(aliases=['node_a', 'node_b']): primary node_a"
    assert out[1].startswith("  node_a: primary, lag 0.000s, probed ")
    assert out[2].startswith("  node_b: replica, lag ")
    assert "ms, 2 probe(s)" in out[2]  # the first probe, then the command's


@pytest.mark.postgres
def test_status_without_a_primary_exits_1(pair: Pair, configure: Any, capsys: Any) -> None:
    configure(pair, ActivePassiveRouter(aliases=["node_b"]))
    assert main(["routing", "status"]) == 1
    out = capsys.readouterr().out
    assert "primary NONE" in out and "node_b: replica" in out


def test_status_without_a_router_says_what_to_add(
    fresh_settings: Any, tmp_path: Any, capsys: Any
) -> None:
    dorm.configure(DATABASES={"default": {"ENGINE": "sqlite", "NAME": str(tmp_path / "a.db")}})
    assert main(["routing", "status"]) != 0
    assert "no ActivePassiveRouter in DATABASE_ROUTERS" in capsys.readouterr().err


def test_sqlite_alias_is_refused_at_first_use(fresh_settings: Any, tmp_path: Any) -> None:
    router = ActivePassiveRouter(aliases=["default"])
    dorm.configure(
        DATABASES={"default": {"ENGINE": "sqlite", "NAME": str(tmp_path / "b.db")}},
        DATABASE_ROUTERS=[router],
    )
    with pytest.raises(ImproperlyConfigured, match=r"DATABASES\['default'\] uses ENGINE 'sqlite'"):
        Item.objects.create(name="x")


def test_unknown_alias_is_refused_at_first_use(fresh_settings: Any, tmp_path: Any) -> None:
    router = ActivePassiveRouter(aliases=["nowhere", "default"])
    dorm.configure(
        DATABASES={"default": {"ENGINE": "sqlite", "NAME": str(tmp_path / "c.db")}},
        DATABASE_ROUTERS=[router],
    )
    with pytest.raises(ImproperlyConfigured, match="'nowhere' is not in DATABASES"):
        list(Item.objects.all())
