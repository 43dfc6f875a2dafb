"""One probe of one alias: its role (primary, replica, read-only, down) and its replay lag."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

__all__ = ["AliasStatus", "probe"]

# libpq's target_session_attrs=read-write asks the same two questions: a primary is out of
# recovery and accepts read-write transactions by default. The lag is the age of the last
# replayed transaction, but only while WAL received is still waiting for replay: a caught-up
# standby of an idle primary is not lagging, however old its last transaction.
_PROBE_SQL = (
    "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on', "
    "CASE WHEN NOT pg_is_in_recovery() THEN 0.0::float8 "
    "WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0::float8 "
    "ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8 END"
)

PRIMARY = "primary"
REPLICA = "replica"
READ_ONLY = "read-only"
DOWN = "down"
UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class AliasStatus:
    """What the last probe of ``alias`` found.

    ``role`` is ``"primary"``, ``"replica"`` (a hot standby), ``"read-only"`` (out of
    recovery but ``default_transaction_read_only`` on: served reads like a replica),
    ``"down"`` (the probe failed; ``error`` says why) or ``"unknown"`` (not probed yet).
    ``lag`` is the replay lag in seconds (0 on a primary, None when unknown);
    ``probed_at`` is the wall-clock time (``time.time()``) the probe ended, ``duration``
    how long it took. ``stale`` is True after a statement on the alias failed in a way
    that says its role may have changed, until the re-probe it triggered has finished.
    """

    alias: str
    role: str = UNKNOWN
    lag: float | None = None
    probed_at: float | None = None
    duration: float = 0.0
    error: str | None = None
    probes: int = 0
    stale: bool = False


def probe(conninfo: str, timeout: float) -> tuple[str, float | None, str | None]:
    """Connect to ``conninfo`` on a connection of its own, ask for the role and the lag.

    Returns ``(role, lag, error)``; a failure is ``("down", None, message)``, never an
    exception. ``timeout`` bounds the connection (libpq's connect_timeout, at least 2 s)
    and the statement (statement_timeout).
    """
    import psycopg

    try:
        with psycopg.connect(
            conninfo,
            autocommit=True,
            connect_timeout=max(2, math.ceil(timeout)),
            application_name="dorm-active-passive-probe",
        ) as conn:
            conn.execute(
                "SELECT set_config('statement_timeout', %s, false)", (f"{int(timeout * 1000)}",)
            )
            row = conn.execute(_PROBE_SQL).fetchone()
    except psycopg.Error as exc:
        return DOWN, None, " ".join(str(exc).split()) or type(exc).__name__
    assert row is not None
    in_recovery, read_only, lag = row
    if in_recovery:
        return REPLICA, (None if lag is None else max(0.0, float(lag))), None
    return (READ_ONLY if read_only else PRIMARY), 0.0, None


def describe(status: AliasStatus, now: float | None = None) -> str:
    """One line for ``dorm routing status``: role, lag and the last probe's age."""
    now = time.time() if now is None else now
    role = status.role + (" (stale)" if status.stale else "")
    lag = "-" if status.lag is None else f"{status.lag:.3f}s"
    if status.probed_at is None:
        probed = "never probed"
    else:
        probed = (
            f"probed {max(0.0, now - status.probed_at):.1f}s ago in {status.duration * 1000:.0f} ms"
        )
    line = f"{status.alias}: {role}, lag {lag}, {probed}, {status.probes} probe(s)"
    return line + (f"; error: {status.error}" if status.error else "")
