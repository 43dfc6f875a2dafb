"""The queue's SQL, built once per (model, database) from the model's ``_meta``.

Every value is a bound parameter. The status names are written as literals on purpose:
they are constants of this module, and the partial indexes of ``OutboxEvent``
(``WHERE status = 'queued'``) are only usable when the query repeats the literal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.models.base import Model

__all__ = ["Statements"]


class Statements:
    """SQL and value adapters for one queue model on one connection (PostgreSQL or SQLite)."""

    def __init__(self, model: type[Model], db: BaseDatabaseWrapper) -> None:
        if db.vendor not in ("postgresql", "sqlite"):
            raise NotImplementedError(
                f"dorm-tasks supports PostgreSQL and SQLite; {db.alias!r} is {db.display_name}"
            )
        self.vendor = db.vendor
        pg = self.pg = db.vendor == "postgresql"
        qn = db.ops.quote_name
        opts = model._meta
        c = {f.name: qn(f.column) for f in opts.concrete_fields}
        self.columns = c
        t = qn(opts.db_table)
        pk = qn(opts.pk.column)  # type: ignore[union-attr]
        ph = "%s" if pg else "?"
        eta_field = opts.get_field("eta")
        adapt = db.ops.adapter_for(eta_field)
        self.ts: Callable[[Any], Any] = adapt if adapt is not None else (lambda v: v)
        payload_in = f"CAST({ph} AS jsonb)" if pg else ph
        payload_out = f"CAST({c['payload']} AS text)" if pg else c["payload"]
        insert_cols = ", ".join(
            c[n] for n in ("name", "payload", "status", "priority", "eta", "attempts", "created_at")
        )
        values = f"{ph}, {payload_in}, 'queued', {ph}, {ph}, 0, {ph}"
        self.insert = f"INSERT INTO {t} ({insert_cols}) VALUES ({values}) RETURNING {pk}"
        # PostgreSQL: pg_notify in the same statement saves a round trip; the server holds
        # it until the transaction commits and drops it on rollback, as NOTIFY always does.
        self.insert_notify = (
            f"WITH ins AS ({self.insert}) SELECT {pk}, pg_notify(%s, '') FROM ins" if pg else ""
        )
        cron_cols = f"{insert_cols}, {c['cron_key']}"
        self.insert_cron = (
            f"INSERT INTO {t} ({cron_cols}) VALUES ({values}, {ph}) "
            f"ON CONFLICT ({c['cron_key']}) DO NOTHING RETURNING {pk}"
        )
        # delay_many(): one statement for any number of rows, the payloads sent as one JSON
        # array (one bound value: no per-row parameters to adapt).
        if pg:
            self.insert_many = (
                f"INSERT INTO {t} ({insert_cols}) SELECT %s, p, 'queued', %s, %s, 0, %s "
                f"FROM jsonb_array_elements(CAST(%s AS jsonb)) WITH ORDINALITY AS r(p, o) "
                f"ORDER BY o"
            )
            self.insert_many_notify = (
                f"WITH ins AS ({self.insert_many} RETURNING 1) "
                f"SELECT (SELECT count(*) FROM ins), pg_notify(%s, '')"
            )
        else:
            self.insert_many = (
                f"INSERT INTO {t} ({insert_cols}) SELECT ?, value, 'queued', ?, ?, 0, ? "
                f"FROM json_each(?) ORDER BY key"
            )
            self.insert_many_notify = ""
        returning = (
            f"{pk}, {c['name']}, {payload_out}, {c['attempts']}, {c['priority']}, {c['eta']}"
        )
        set_running = (
            f"{c['status']} = 'running', {c['attempts']} = {c['attempts']} + 1, "
            f"{c['lease_until']} = {ph}, {c['lease_token']} = {ph}"
        )
        pick = (
            f"SELECT {pk} FROM {t} WHERE {c['status']} = 'queued' AND {c['eta']} <= {ph} "
            f"ORDER BY {c['priority']}, {c['eta']}, {pk} LIMIT {ph}"
        )
        if pg:
            # Locked rows are skipped, not waited for: concurrent workers claim disjoint sets.
            self.claim = (
                f"WITH picked AS MATERIALIZED ({pick} FOR UPDATE SKIP LOCKED) "
                f"UPDATE {t} SET {set_running} FROM picked WHERE {t}.{pk} = picked.{pk} "
                f"RETURNING {t}.{returning}, "
                # The claim commits without waiting for its WAL flush: the batch's own
                # commit (synchronous) flushes it, and only a server crash before that could
                # undo it, taking the batch with it; a worker crash cannot (what other
                # sessions see does not depend on the flush).
                f"set_config('synchronous_commit', 'off', true)"
            )
        else:
            # One statement in autocommit mode: SQLite runs it under its write lock, atomically.
            self.claim = (
                f"UPDATE {t} SET {set_running} WHERE {pk} IN ({pick}) RETURNING {returning}"
            )
        ids = f"{pk} = ANY({ph})" if pg else f"{pk} IN (SELECT value FROM json_each({ph}))"
        self._ids_json = not pg
        mine = f"{ids} AND {c['lease_token']} = {ph}"
        self.finish = (
            f"UPDATE {t} SET {c['status']} = 'done', {c['lease_until']} = NULL, "
            f"{c['finished_at']} = {ph} WHERE {mine}"
        )
        self.fail = (
            f"UPDATE {t} SET {c['status']} = {ph}, {c['eta']} = {ph}, {c['last_error']} = {ph}, "
            f"{c['lease_until']} = NULL, {c['finished_at']} = {ph} "
            f"WHERE {pk} = {ph} AND {c['lease_token']} = {ph}"
        )
        running_mine = f"{mine} AND {c['status']} = 'running'"
        # Which of a batch's rows this worker still holds.
        self.owned = f"SELECT {pk} FROM {t} WHERE {running_mine}"
        if pg:
            # Rows being marked by a batch's transaction are skipped, not waited for: it
            # decides them, and a heartbeat or sweep must never stall behind it.
            self.renew = (
                f"UPDATE {t} SET {c['lease_until']} = {ph} WHERE {pk} IN "
                f"(SELECT {pk} FROM {t} WHERE {running_mine} FOR UPDATE SKIP LOCKED)"
            )
        else:
            self.renew = f"UPDATE {t} SET {c['lease_until']} = {ph} WHERE {running_mine}"
        self.release = (
            f"UPDATE {t} SET {c['status']} = 'queued', {c['attempts']} = {c['attempts']} - 1, "
            f"{c['lease_until']} = NULL WHERE {mine} AND {c['status']} = 'running'"
        )
        expired = f"{c['status']} = 'running' AND {c['lease_until']} < {ph}"
        if pg:
            expired = f"{pk} IN (SELECT {pk} FROM {t} WHERE {expired} FOR UPDATE SKIP LOCKED)"
        self.sweep = (
            f"UPDATE {t} SET {c['status']} = CASE WHEN {c['attempts']} >= {ph} THEN 'dead' "
            f"ELSE 'queued' END, {c['lease_until']} = NULL, {c['last_error']} = {ph} "
            f"WHERE {expired}"
        )

    def claim_params(self, lease_until: Any, token: str, now: Any, limit: int) -> list[object]:
        """The parameters of ``claim`` in statement order (the CTE comes first on PostgreSQL)."""
        if self.pg:
            return [self.ts(now), limit, self.ts(lease_until), token]
        return [self.ts(lease_until), token, self.ts(now), limit]

    def ids(self, ids: Sequence[int]) -> object:
        """The bound value for a list of primary keys (an array, or JSON text on SQLite)."""
        return json.dumps(list(ids)) if self._ids_json else list(ids)
