"""``recover()`` / ``dorm two-phase recover``: finish the prepared transactions of a
two-phase commit whose process died.

For each dorm transaction id (``dorm2pc_<txid>_<n>``) prepared on a configured
PostgreSQL alias: a ``commit`` decision record means COMMIT PREPARED; otherwise, once
the transaction is older than ``older_than`` (in flight before that), recovery writes a
``rollback`` decision in the coordinator's database (where part ``_0`` is prepared; the
primary key makes it lose to a ``commit`` written meanwhile) and rolls every part back.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from dorm.contrib.two_phase.coordinator import (
    DECISION_TABLE,
    GID_PREFIX,
    UNDEFINED_OBJECT,
    ensure_decision_table,
    gid_literal,
    parse_gid,
)
from dorm.exceptions import DatabaseError

__all__ = ["Recovered", "recover"]


@dataclass(frozen=True)
class Recovered:
    """One prepared transaction and what recovery did (or, dry, would do) with it."""

    alias: str
    gid: str
    action: str  # "commit", "rollback" or "skip" (younger than older_than)
    prepared_at: datetime.datetime


def _postgres_aliases(aliases: list[str] | None) -> list[str]:
    from dorm.db.connection import connections

    chosen = list(connections) if aliases is None else aliases
    return [a for a in chosen if connections[a].vendor == "postgresql"]


def _decisions(aliases: list[str]) -> dict[str, str]:
    """txid -> outcome, from the decision table of every alias that has one."""
    from dorm.db.connection import connections

    found: dict[str, str] = {}
    for alias in aliases:
        wrapper = connections[alias]
        if DECISION_TABLE not in wrapper.table_names():
            continue
        rows = wrapper.fetchall(
            f"SELECT txid, outcome FROM {wrapper.ops.quote_name(DECISION_TABLE)}", ()
        )
        for txid, outcome in rows:
            if found.get(txid) != "commit":
                found[str(txid)] = str(outcome)
    return found


def _prepared(aliases: list[str]) -> list[tuple[str, str, datetime.datetime]]:
    """(alias, gid, prepared_at) of dorm's prepared transactions in each alias's database
    (one database reached through two aliases is listed once)."""
    from dorm.db.connection import connections

    seen: set[tuple[Any, ...]] = set()
    result = []
    for alias in aliases:
        wrapper = connections[alias]
        rows = wrapper.fetchall(
            "SELECT p.gid, p.prepared, s.system_identifier, current_database() "
            "FROM pg_prepared_xacts AS p, pg_control_system() AS s "
            "WHERE p.database = current_database() AND p.gid LIKE %s ORDER BY p.gid",
            (GID_PREFIX.replace("_", "\\_") + "%",),
        )
        for gid, prepared_at, system, database in rows:
            key = (system, database, gid)
            if key in seen or parse_gid(gid) is None:
                continue
            seen.add(key)
            result.append((alias, str(gid), prepared_at))
    return result


def _fence(coordinator: str, txid: str) -> str:
    """Write the ``rollback`` decision unless a ``commit`` is there; the outcome that holds."""
    from dorm.db.connection import connections

    ensure_decision_table(coordinator)
    wrapper = connections[coordinator]
    table = wrapper.ops.quote_name(DECISION_TABLE)
    wrapper.execute(
        f"INSERT INTO {table} (txid, outcome, aliases) VALUES (%s, 'rollback', '') "
        "ON CONFLICT (txid) DO NOTHING",
        (txid,),
    )
    row = wrapper.fetchone(f"SELECT outcome FROM {table} WHERE txid = %s", (txid,))
    return str(row[0]) if row else "rollback"


def _finish(alias: str, gid: str, action: str) -> None:
    from dorm.db.connection import connections

    statement = "COMMIT PREPARED" if action == "commit" else "ROLLBACK PREPARED"
    try:
        connections[alias].execute(f"{statement} {gid_literal(gid)}", ())
    except DatabaseError as exc:
        if exc.sqlstate != UNDEFINED_OBJECT:  # gone: finished by its own process
            raise


def recover(
    aliases: list[str] | None = None,
    dry_run: bool = False,
    older_than: datetime.timedelta = datetime.timedelta(seconds=60),
) -> list[Recovered]:
    """Finish dorm's prepared transactions on ``aliases`` (default: every configured
    PostgreSQL alias). Transactions without a commit decision that were prepared less than
    ``older_than`` ago are left alone (``skip``): their process may still be running."""
    chosen = _postgres_aliases(aliases)
    prepared = _prepared(chosen)
    decisions = _decisions(chosen)
    now = datetime.datetime.now(datetime.UTC)
    by_txid: dict[str, list[tuple[str, str, datetime.datetime]]] = {}
    for alias, gid, prepared_at in prepared:
        parsed = parse_gid(gid)
        assert parsed is not None
        by_txid.setdefault(parsed[0], []).append((alias, gid, prepared_at))
    results: list[Recovered] = []
    for txid, parts in by_txid.items():
        outcome = decisions.get(txid)
        if outcome != "commit":
            oldest = min(p[2] for p in parts)
            if now - oldest < older_than:
                results += [Recovered(a, g, "skip", t) for a, g, t in parts]
                continue
            coordinator = next((a for a, g, _t in parts if g.endswith("_0")), None)
            outcome = "rollback"
            if coordinator is not None and not dry_run:
                outcome = _fence(coordinator, txid)
        for alias, gid, prepared_at in parts:
            if not dry_run:
                _finish(alias, gid, outcome)
            results.append(Recovered(alias, gid, outcome, prepared_at))
    if not dry_run:
        _forget(chosen, {t for t, parts in by_txid.items() if decisions.get(t) != "commit"})
    return results


def _forget(aliases: list[str], undecided: set[str]) -> None:
    """Delete the decision records no one needs any more.

    A ``commit`` record is written after every part is prepared, so once recovery has
    committed them (or none is left prepared) it is done with. A ``rollback`` record is
    kept for a day: it fences off a coordinator that stalled between PREPARE and its own
    decision, which must still find it."""
    from dorm.db.connection import connections

    still_prepared = {parse_gid(g)[0] for _a, g, _t in _prepared(aliases)}  # type: ignore[index]
    fence = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    for alias in aliases:
        wrapper = connections[alias]
        if DECISION_TABLE not in wrapper.table_names():
            continue
        table = wrapper.ops.quote_name(DECISION_TABLE)
        rows = wrapper.fetchall(
            f"SELECT txid FROM {table} WHERE outcome = 'commit' OR decided_at < %s", (fence,)
        )
        done = [str(r[0]) for r in rows if str(r[0]) not in still_prepared | undecided]
        if done:
            wrapper.execute(f"DELETE FROM {table} WHERE txid = ANY(%s)", (done,))
