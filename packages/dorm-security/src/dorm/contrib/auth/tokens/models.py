"""``ShortLivedToken``: the token table; it holds SHA-256 digests, never a token."""

from __future__ import annotations

import dorm

__all__ = ["ShortLivedToken", "TokenRecord"]


class TokenRecord(dorm.Model):
    """The abstract columns of a token table; subclass it for a table of your own.

    ``token_hash`` matches the ``token`` sensitive pattern, so even the digests are masked
    in query logs and error messages.
    """

    token_hash = dorm.CharField(max_length=64, unique=True)
    subject = dorm.CharField(max_length=255, db_index=True)
    created_at = dorm.DateTimeField()
    expires_at = dorm.DateTimeField()
    rotated_at = dorm.DateTimeField(null=True)

    class Meta:
        abstract = True


class ShortLivedToken(TokenRecord):
    """The default token table, ``dorm_short_lived_token``."""

    class Meta:
        app_label = "dorm_auth"
        db_table = "dorm_short_lived_token"
