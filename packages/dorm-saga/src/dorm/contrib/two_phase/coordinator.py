"""``two_phase_commit``: one ``atomic()`` block per alias, ended by PREPARE TRANSACTION.

The order that makes a crash recoverable:

1. every alias runs ``PREPARE TRANSACTION 'dorm2pc_<txid>_<n>'`` (its work is on disk, its
   locks held, but nothing is visible yet); a failure here rolls every alias back;
2. the decision record (``txid``, ``commit``) is committed in the first alias's database:
   from here the outcome is "commit", whatever happens to this process. Recovery that finds
   the transaction prepared without a decision writes ``rollback`` under the same key
   first; the primary key lets only one of the two decisions exist;
3. every alias runs ``COMMIT PREPARED``; the decision record is deleted.

``dorm two-phase recover`` (``recovery.py``) finishes step 3 for a process that died after
step 2 and rolls back the prepared transactions of one that died before it. Transaction
ids carry the ``dorm2pc_`` prefix, so recovery never touches another program's.
"""

from __future__ import annotations

import logging
import re
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from dorm.contrib.two_phase.exceptions import (
    TwoPhaseCommitError,
    TwoPhaseConfigurationError,
    TwoPhaseError,
)
from dorm.exceptions import DatabaseError, IntegrityError
from dorm.transaction import Atomic

__all__ = ["DECISION_TABLE", "GID_PREFIX", "TwoPhaseTransaction", "parse_gid", "two_phase_commit"]

logger = logging.getLogger("dorm.contrib.two_phase")

GID_PREFIX = "dorm2pc_"
DECISION_TABLE = "dorm_two_phase_decision"
_GID = re.compile(r"dorm2pc_([0-9a-f]{32})_(\d{1,4})")
# PostgreSQL: the prepared transaction is gone (finished by someone else).
UNDEFINED_OBJECT = "42704"

_CHECKED: weakref.WeakSet[Any] = weakref.WeakSet()  # wrappers whose server allows 2PC
_DECISIONS: weakref.WeakSet[Any] = weakref.WeakSet()  # wrappers with the decision table


def parse_gid(gid: str) -> tuple[str, int] | None:
    """``(txid, alias index)`` of a dorm transaction id; None for any other id."""
    match = _GID.fullmatch(gid)
    return (match.group(1), int(match.group(2))) if match else None


def gid_literal(gid: str) -> str:
    """The id as a SQL string literal: PREPARE / COMMIT PREPARED take no parameters, so
    only ids of dorm's own shape (hex and digits) are ever written into SQL."""
    if parse_gid(gid) is None:
        raise ValueError(f"{gid!r} is not a dorm two-phase transaction id")
    return f"'{gid}'"


class _PreparingAtomic(Atomic):
    """The outermost ``atomic()`` of one alias, ended by PREPARE TRANSACTION instead of
    COMMIT; its ``on_commit`` callbacks are kept for after COMMIT PREPARED."""

    def __init__(self, using: str, gid: str) -> None:
        super().__init__(using, savepoint=True, durable=True)
        self.gid = gid
        self.callbacks: list[Callable[[], Any]] = []

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc_type is None:
            from dorm.db.connection import connections

            state = connections[self.using].state
            self.callbacks = [fn for _sids, fn in state.on_commit]
            state.on_commit = []
        super().__exit__(exc_type, exc, tb)

    def _end(self, db: Any, conn: Any, statement: str) -> None:
        if statement == "COMMIT":
            db._run_plain(conn, f"PREPARE TRANSACTION {gid_literal(self.gid)}")
        else:
            super()._end(db, conn, statement)


class TwoPhaseTransaction:
    """What ``with two_phase_commit(...) as txn`` gives: statements on any of its aliases,
    each in that alias's transaction."""

    def __init__(self, aliases: list[str], txid: str) -> None:
        self.aliases = aliases
        self.txid = txid

    def _connection(self, alias: str) -> Any:
        if alias not in self.aliases:
            raise ValueError(
                f"alias {alias!r} is not part of this two-phase commit "
                f"(aliases: {', '.join(self.aliases)})"
            )
        from dorm.db.connection import connections

        return connections[alias]

    def execute(self, alias: str, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run ``sql`` with bound ``params`` in ``alias``'s transaction; the row count."""
        return int(self._connection(alias).execute(sql, tuple(params or ())))

    def fetchall(
        self, alias: str, sql: str, params: Sequence[Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run a query in ``alias``'s transaction and return its rows."""
        return list(self._connection(alias).fetchall(sql, tuple(params or ())))


def _preflight(aliases: Sequence[str]) -> list[str]:
    from dorm.db.connection import connections

    if isinstance(aliases, str):
        raise TypeError(f"two_phase_commit() takes a list of aliases, not the string {aliases!r}")
    chosen = list(aliases)
    if not chosen:
        raise ValueError("two_phase_commit() needs at least one database alias")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"two_phase_commit(): an alias is listed twice in {chosen}")
    if len(chosen) > 9999:
        raise ValueError("two_phase_commit(): at most 9,999 aliases")
    for alias in connections:
        if connections[alias].in_atomic_block:
            raise RuntimeError(
                f"two_phase_commit() cannot run inside an atomic() block (open on {alias!r}): "
                f"each alias needs its own top-level transaction to PREPARE; move the "
                f"two_phase_commit() block out of the atomic() block"
            )
    for alias in chosen:
        wrapper = connections[alias]
        if wrapper.vendor != "postgresql":
            raise TwoPhaseConfigurationError(
                f"two_phase_commit(): alias {alias!r} is a {wrapper.vendor} database; "
                f"PREPARE TRANSACTION needs PostgreSQL"
            )
    for alias in chosen:
        wrapper = connections[alias]
        if wrapper in _CHECKED:
            continue
        row = wrapper.fetchone("SELECT current_setting('max_prepared_transactions')::int", ())
        if row is None or int(row[0]) < 1:
            raise TwoPhaseConfigurationError(
                f"two_phase_commit(): the server of alias {alias!r} has "
                f"max_prepared_transactions = {row[0] if row else '?'}; set it above 0 (at "
                f"least max_connections for heavy use) in postgresql.conf and restart it"
            )
        _CHECKED.add(wrapper)
    ensure_decision_table(chosen[0])
    return chosen


def ensure_decision_table(alias: str) -> None:
    """Create the decision table on ``alias`` if it is missing (once per wrapper)."""
    from dorm.db.connection import connections

    wrapper = connections[alias]
    if wrapper in _DECISIONS:
        return
    qn = wrapper.ops.quote_name
    try:
        wrapper.execute(
            f"CREATE TABLE IF NOT EXISTS {qn(DECISION_TABLE)} (txid varchar(32) PRIMARY KEY, "
            "outcome varchar(8) NOT NULL, aliases text NOT NULL, "
            "decided_at timestamptz NOT NULL DEFAULT now())",
            (),
        )
    except DatabaseError:
        # Two processes creating it at once: one loses on the catalog's unique index.
        if DECISION_TABLE not in wrapper.table_names():
            raise
    _DECISIONS.add(wrapper)


@contextmanager
def two_phase_commit(aliases: Sequence[str]) -> Iterator[TwoPhaseTransaction]:
    """Run the block in one transaction per alias and commit them all or none.

    :raises RuntimeError: called inside an ``atomic()`` block (before any statement).
    :raises TwoPhaseConfigurationError: an alias is not PostgreSQL or its server has
        ``max_prepared_transactions = 0`` (before any statement).
    :raises TwoPhaseCommitError: the commit was decided but could not be finished on
        some alias (``dorm two-phase recover`` finishes it).
    """
    chosen = _preflight(aliases)
    txid = uuid.uuid4().hex
    blocks = [_PreparingAtomic(alias, f"{GID_PREFIX}{txid}_{n}") for n, alias in enumerate(chosen)]
    entered: list[_PreparingAtomic] = []
    try:
        for block in blocks:
            block.__enter__()
            entered.append(block)
        yield TwoPhaseTransaction(chosen, txid)
    except BaseException as exc:
        for block in reversed(entered):
            try:
                block.__exit__(type(exc), exc, exc.__traceback__)
            except Exception:
                logger.exception("rolling back %r after a failed two-phase block", block.using)
        raise
    _prepare_and_commit(chosen, txid, blocks)


def _prepare_and_commit(chosen: list[str], txid: str, blocks: list[_PreparingAtomic]) -> None:
    from dorm.db.connection import connections

    prepared: list[_PreparingAtomic] = []
    try:
        for n, block in enumerate(blocks):
            try:
                block.__exit__(None, None, None)
            except BaseException as exc:
                for rest in blocks[n + 1 :]:
                    rest.__exit__(type(exc), exc, exc.__traceback__)
                raise
            prepared.append(block)
        coordinator = connections[chosen[0]]
        try:
            coordinator.execute(
                f"INSERT INTO {coordinator.ops.quote_name(DECISION_TABLE)} "
                "(txid, outcome, aliases) VALUES (%s, 'commit', %s)",
                (txid, ",".join(chosen)),
            )
        except IntegrityError as exc:
            raise TwoPhaseError(
                f"two-phase transaction {txid} was rolled back: 'dorm two-phase recover' "
                f"found it prepared and decided to roll it back first"
            ) from exc
    except BaseException:
        for block in prepared:
            _finish_prepared(block.using, block.gid, "ROLLBACK PREPARED")
        raise
    failed = []
    for block in blocks:
        try:
            _finish_prepared(block.using, block.gid, "COMMIT PREPARED", log=False)
        except DatabaseError as exc:
            failed.append((block.using, exc))
    if failed:
        raise TwoPhaseCommitError(
            f"two-phase transaction {txid}: the commit was decided but COMMIT PREPARED failed "
            f"on {', '.join(f'{a!r} ({e})' for a, e in failed)}; those stay prepared until "
            f"'dorm two-phase recover' commits them"
        ) from failed[0][1]
    coordinator = connections[chosen[0]]
    try:
        coordinator.execute(
            f"DELETE FROM {coordinator.ops.quote_name(DECISION_TABLE)} WHERE txid = %s", (txid,)
        )
    except DatabaseError:
        logger.warning("two-phase %s: committed; its decision record was not deleted", txid)
    for block in blocks:
        for callback in block.callbacks:
            try:
                callback()
            except Exception:
                logger.exception("on_commit callback %r raised", callback)


def _finish_prepared(alias: str, gid: str, statement: str, log: bool = True) -> bool:
    """COMMIT / ROLLBACK PREPARED ``gid`` on ``alias``; False when it was already gone.

    A rollback that fails is logged (``recover`` rolls it back later); a commit that
    fails raises."""
    from dorm.db.connection import connections

    try:
        connections[alias].execute(f"{statement} {gid_literal(gid)}", ())
    except DatabaseError as exc:
        if exc.sqlstate == UNDEFINED_OBJECT:
            return False  # finished by 'dorm two-phase recover' meanwhile
        if not log:
            raise
        logger.error(
            "%s %s on %r failed: %s (dorm two-phase recover retries)", statement, gid, alias, exc
        )
        return False
    return True
