"""The errors of dorm.contrib.auth.tokens."""

from __future__ import annotations

from dorm.exceptions import DormError

__all__ = ["ExpiredTokenError", "InvalidTokenError", "TokenError"]


class TokenError(DormError):
    """Base class of the token errors."""


class InvalidTokenError(TokenError):
    """The token is unknown, malformed, revoked, or was already rotated."""


class ExpiredTokenError(TokenError):
    """The token was valid once; its lifetime (or grace window) is over."""
