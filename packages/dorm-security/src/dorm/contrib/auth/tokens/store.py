"""``TokenStore``: issue, verify, rotate and revoke short-lived bearer tokens.

A token is 32 random bytes from ``secrets`` (URL-safe text). The table keeps only its
SHA-256 digest: a leaked table yields no usable token. Verification looks the digest up,
compares it again with ``hmac.compare_digest`` (constant time) and enforces ``expires_at``.
Rotation issues a successor and shortens the current token's life to the grace window,
so requests already holding it keep working for a moment; a token rotates only once
(a conditional UPDATE decides, so two concurrent rotations cannot both succeed).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any

from dorm.contrib.auth.tokens.exceptions import ExpiredTokenError, InvalidTokenError, TokenError

__all__ = [
    "TokenStore",
    "default_store",
    "hash_token",
    "issue_short_lived_token",
    "rotate_short_lived_token",
    "set_default_store",
    "utc_now",
    "verify_short_lived_token",
]

_TOKEN_BYTES = 32
_MAX_TOKEN_LENGTH = 256


def utc_now() -> datetime.datetime:
    """The current time, aware, in UTC (the default clock of a store)."""
    return datetime.datetime.now(datetime.UTC)


def hash_token(token: str) -> str:
    """The SHA-256 hex digest a store keeps for ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


def _positive(name: str, value: datetime.timedelta, allow_zero: bool = False) -> None:
    if not isinstance(value, datetime.timedelta):
        raise TypeError(f"{name} must be a datetime.timedelta, got {type(value).__name__}")
    if value < datetime.timedelta(0) or (value == datetime.timedelta(0) and not allow_zero):
        raise ValueError(f"{name} must be positive, got {value}")


class TokenStore:
    """Short-lived tokens in ``model``'s table (default ``ShortLivedToken``).

    ``ttl`` is the life of a new token; ``grace`` how long a rotated token stays valid;
    ``clock`` returns the current aware datetime (tests pass a fake one).
    """

    def __init__(
        self,
        model: Any = None,
        *,
        ttl: datetime.timedelta = datetime.timedelta(minutes=15),
        grace: datetime.timedelta = datetime.timedelta(seconds=30),
        using: str = "default",
        clock: Callable[[], datetime.datetime] = utc_now,
    ) -> None:
        _positive("ttl", ttl)
        _positive("grace", grace, allow_zero=True)
        self._model = model
        self.ttl = ttl
        self.grace = grace
        self.using = using
        self.clock = clock

    @property
    def model(self) -> Any:
        if self._model is None:
            from dorm.contrib.auth.tokens.models import ShortLivedToken

            self._model = ShortLivedToken
        return self._model

    def _rows(self) -> Any:
        return self.model._default_manager.using(self.using)

    def issue(self, subject: str, ttl: datetime.timedelta | None = None) -> str:
        """Create a token for ``subject`` (a user id, an API client...) and return it."""
        if not isinstance(subject, str) or not subject:
            raise ValueError(f"subject must be a non-empty str, got {subject!r}")
        life = self.ttl if ttl is None else ttl
        _positive("ttl", life)
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        now = self.clock()
        self._rows().create(
            token_hash=hash_token(token),
            subject=subject,
            created_at=now,
            expires_at=now + life,
        )
        return token

    def _lookup(self, token: str) -> Any:
        if not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN_LENGTH:
            raise InvalidTokenError("the token is malformed (expected the text issue() returned)")
        digest = hash_token(token)
        row = self._rows().filter(token_hash=digest).first()
        # The lookup already matched the digest; comparing again in constant time keeps the
        # check independent of how the database compares strings.
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            raise InvalidTokenError("unknown or revoked token")
        return row

    def verify(self, token: str) -> str:
        """Return the token's subject.

        :raises InvalidTokenError: unknown, malformed or revoked.
        :raises ExpiredTokenError: past its expiry (or its grace window after a rotation).
        """
        return str(self._live(token).subject)

    def _live(self, token: str) -> Any:
        row = self._lookup(token)
        if self.clock() >= row.expires_at:
            state = "rotated and its grace window is over" if row.rotated_at else "expired"
            raise ExpiredTokenError(f"the token of subject {row.subject!r} is {state}")
        return row

    def rotate(self, current: str, grace: datetime.timedelta | None = None) -> tuple[str, str]:
        """Issue the successor of ``current``; return ``(new, current)``.

        ``current`` stays valid for ``grace`` (default: the store's) or until its own
        expiry, whichever comes first, then expires.

        :raises InvalidTokenError: ``current`` is unknown or was already rotated.
        :raises ExpiredTokenError: ``current`` has expired.
        """
        window = self.grace if grace is None else grace
        _positive("grace", window, allow_zero=True)
        from dorm import transaction

        with transaction.atomic(using=self.using):
            row = self._live(current)
            subject = str(row.subject)
            now = self.clock()
            new = self.issue(subject)
            # Only the rotation that flips rotated_at from NULL wins; a concurrent one
            # waits for it (row lock, or SQLite's write lock) and then matches no row.
            won = (
                self._rows()
                .filter(pk=row.pk, rotated_at__isnull=True)
                .update(rotated_at=now, expires_at=min(row.expires_at, now + window))
            )
            if won != 1:
                raise InvalidTokenError(
                    f"the token of subject {subject!r} was already rotated; use its successor"
                )
        return new, current

    def revoke(self, token: str) -> bool:
        """Delete ``token``; return whether it existed."""
        try:
            row = self._lookup(token)
        except TokenError:
            return False
        return bool(self._rows().filter(pk=row.pk).delete()[0])

    def purge_expired(self) -> int:
        """Delete the expired tokens; return how many."""
        return int(self._rows().filter(expires_at__lte=self.clock()).delete()[0])


_default = TokenStore()


def default_store() -> TokenStore:
    """The store the module functions use."""
    return _default


def set_default_store(store: TokenStore) -> TokenStore:
    """Make ``store`` the default; return the previous one."""
    global _default
    if not isinstance(store, TokenStore):
        raise TypeError(f"set_default_store() needs a TokenStore, got {type(store).__name__}")
    previous, _default = _default, store
    return previous


def issue_short_lived_token(subject: str, ttl: datetime.timedelta | None = None) -> str:
    """A new token for ``subject`` from the default store."""
    return _default.issue(subject, ttl)


def verify_short_lived_token(token: str) -> str:
    """The subject of a valid token (see ``TokenStore.verify``)."""
    return _default.verify(token)


def rotate_short_lived_token(
    current: str, grace: datetime.timedelta | None = None
) -> tuple[str, str]:
    """``(new, old)``: a successor for ``current``, which stays valid for the grace window."""
    return _default.rotate(current, grace)
