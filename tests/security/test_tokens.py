"""Short-lived tokens on SQLite and PostgreSQL: hashes only, grace window, expiry, races."""

from __future__ import annotations

import datetime
import hashlib
import threading
from typing import Any

import pytest

from dorm.contrib.auth import tokens
from dorm.contrib.auth.tokens import (
    ExpiredTokenError,
    InvalidTokenError,
    ShortLivedToken,
    TokenStore,
    issue_short_lived_token,
    rotate_short_lived_token,
    set_default_store,
    verify_short_lived_token,
)
from dorm.db.connection import get_connection

MODELS = [ShortLivedToken]
pytestmark = pytest.mark.usefixtures("clean_tables")

T0 = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


class Clock:
    """A settable clock for the stores under test."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += datetime.timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> TokenStore:
    return TokenStore(
        ttl=datetime.timedelta(minutes=10), grace=datetime.timedelta(seconds=30), clock=clock
    )


def _table() -> list[tuple[Any, ...]]:
    conn = get_connection()
    qn = conn.ops.quote_name
    return conn.fetchall(f"SELECT * FROM {qn(ShortLivedToken._meta.db_table)}")


def test_issue_stores_only_a_hash_and_verify_returns_the_subject(
    db: Any, store: TokenStore
) -> None:
    token = store.issue("user:1")
    assert len(token) >= 43  # 32 bytes from secrets, URL-safe base64
    assert store.verify(token) == "user:1"
    (row,) = _table()
    assert hashlib.sha256(token.encode()).hexdigest() in row
    assert not any(isinstance(v, str) and token in v for v in row)
    assert store.issue("user:1") != token


def test_expiry_is_enforced(db: Any, store: TokenStore, clock: Clock) -> None:
    token = store.issue("user:2")
    clock.advance(minutes=9, seconds=59)
    assert store.verify(token) == "user:2"
    clock.advance(seconds=1)
    with pytest.raises(ExpiredTokenError, match="the token of subject 'user:2' is expired"):
        store.verify(token)
    assert store.purge_expired() == 1 and _table() == []
    with pytest.raises(InvalidTokenError, match="unknown or revoked"):
        store.verify(token)


def test_rotation_keeps_the_old_token_for_the_grace_window_only(
    db: Any, store: TokenStore, clock: Clock
) -> None:
    old = store.issue("user:3")
    clock.advance(minutes=1)
    new, returned = store.rotate(old)
    assert returned == old and new != old
    clock.advance(seconds=29)
    assert store.verify(old) == "user:3" and store.verify(new) == "user:3"
    clock.advance(seconds=1)
    with pytest.raises(ExpiredTokenError, match="rotated and its grace window is over"):
        store.verify(old)
    clock.advance(minutes=9)  # the successor lives a full ttl from its rotation
    assert store.verify(new) == "user:3"
    clock.advance(minutes=1)
    with pytest.raises(ExpiredTokenError):
        store.verify(new)


def test_grace_never_extends_a_token_past_its_own_expiry(
    db: Any, store: TokenStore, clock: Clock
) -> None:
    old = store.issue("user:4")
    clock.advance(minutes=9, seconds=50)
    new, _ = store.rotate(old, grace=datetime.timedelta(minutes=5))
    clock.advance(seconds=10)
    with pytest.raises(ExpiredTokenError):
        store.verify(old)
    assert store.verify(new) == "user:4"


def test_a_token_rotates_once_and_an_expired_one_not_at_all(
    db: Any, store: TokenStore, clock: Clock
) -> None:
    old = store.issue("user:5")
    new, _ = store.rotate(old)
    with pytest.raises(InvalidTokenError, match="already rotated; use its successor"):
        store.rotate(old)
    assert len(_table()) == 2  # the refused rotation left no token behind
    clock.advance(minutes=11)
    with pytest.raises(ExpiredTokenError):
        store.rotate(new)


def test_concurrent_rotations_of_one_token_have_one_winner(db: Any, store: TokenStore) -> None:
    old = store.issue("user:6")
    barrier = threading.Barrier(8)
    wins: list[str] = []
    losses: list[BaseException] = []

    def rotate() -> None:
        barrier.wait()
        try:
            wins.append(store.rotate(old)[0])
        except InvalidTokenError as exc:
            losses.append(exc)

    threads = [threading.Thread(target=rotate) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 7
    assert len(_table()) == 2  # the old token and one successor
    assert store.verify(wins[0]) == "user:6"


def test_verification_compares_in_constant_time(
    db: Any, store: TokenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hmac

    from dorm.contrib.auth.tokens import store as store_module

    seen: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(store_module.hmac, "compare_digest", spy)
    token = store.issue("user:7")
    assert store.verify(token) == "user:7"
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert seen == [(digest, digest)]


@pytest.mark.parametrize("bad", ["", "x" * 257, None, b"bytes"])
def test_malformed_tokens_are_refused(db: Any, store: TokenStore, bad: Any) -> None:
    with pytest.raises(InvalidTokenError, match="malformed"):
        store.verify(bad)


def test_revoke(db: Any, store: TokenStore) -> None:
    token = store.issue("user:8")
    assert store.revoke(token) is True and store.revoke(token) is False
    with pytest.raises(InvalidTokenError):
        store.verify(token)


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="ttl must be positive"):
        TokenStore(ttl=datetime.timedelta(0))
    with pytest.raises(TypeError, match="grace must be a datetime.timedelta, got int"):
        TokenStore(grace=30)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a TokenStore"):
        set_default_store("store")  # type: ignore[arg-type]


def test_module_functions_use_the_default_store(db: Any, clock: Clock) -> None:
    previous = set_default_store(TokenStore(grace=datetime.timedelta(seconds=5), clock=clock))
    try:
        current_token = issue_short_lived_token("user:9")
        # The release note's lines, as written:
        new_tok, old_tok = rotate_short_lived_token(current_token)
        assert old_tok == current_token
        assert verify_short_lived_token(new_tok) == verify_short_lived_token(old_tok) == "user:9"
        clock.advance(seconds=5)
        with pytest.raises(ExpiredTokenError):
            verify_short_lived_token(old_tok)
        assert tokens.default_store().verify(new_tok) == "user:9"
    finally:
        set_default_store(previous)
