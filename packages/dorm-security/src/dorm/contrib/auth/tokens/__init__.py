"""Short-lived bearer tokens: random, stored as hashes, rotated with a grace window.

Usage::

    from dorm.contrib.auth.tokens import (
        issue_short_lived_token, rotate_short_lived_token, verify_short_lived_token,
    )

    token = issue_short_lived_token("user:42")         # give it to the client
    verify_short_lived_token(token)                    # "user:42"
    new_tok, old_tok = rotate_short_lived_token(token)
    # new_tok lives a full ttl; old_tok keeps working for the grace window, then expires.

The functions use a default ``TokenStore`` over the ``ShortLivedToken`` table (create it with
``SchemaEditor().create_model`` or a migration); ``set_default_store(TokenStore(ttl=...,
grace=...))`` changes the lifetimes or the table.
"""

from __future__ import annotations

from dorm.contrib.auth.tokens.exceptions import ExpiredTokenError, InvalidTokenError, TokenError
from dorm.contrib.auth.tokens.models import ShortLivedToken, TokenRecord
from dorm.contrib.auth.tokens.store import (
    TokenStore,
    default_store,
    hash_token,
    issue_short_lived_token,
    rotate_short_lived_token,
    set_default_store,
    verify_short_lived_token,
)

__version__ = "1.0.0"

__all__ = [
    "ExpiredTokenError",
    "InvalidTokenError",
    "ShortLivedToken",
    "TokenError",
    "TokenRecord",
    "TokenStore",
    "__version__",
    "default_store",
    "hash_token",
    "issue_short_lived_token",
    "rotate_short_lived_token",
    "set_default_store",
    "verify_short_lived_token",
]
