"""The built-in masking strategies, and the keyed hash that makes them deterministic.

Without a seed every pseudonym comes from ``secrets``. With a seed it is an HMAC-SHA256 of
the original value keyed by the seed (the strategy name is mixed in, so an email and a phone
number never share digits), the way PostgreSQL Anonymizer's ``pseudo_*`` functions work:
the same input gives the same output in every table and on every run, so a column that
joins two tables still joins them once both are masked, and the original cannot be
recovered without the seed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any

__all__ = ["BUILTIN", "REDACTED", "Masker", "Strategy", "builtin_length", "make_masker"]

#: What ``"redact"`` writes (cut to the column's ``max_length``).
REDACTED = "[REDACTED]"

#: Built-in strategy names and whether their output keeps a unique column unique.
BUILTIN: dict[str, bool] = {
    "random_email": True,
    "random_phone": True,
    "redact": False,
    "null": True,  # NULLs never collide in a unique index, on SQLite and PostgreSQL alike
}

Strategy = str | Callable[[Any], Any]

# Output length of each pseudonym strategy (checked against max_length before any write).
_EMAIL_HEX = 24  # 96 bits: a collision among 10^9 rows has odds below 10^-10
_EMAIL_DOMAIN = "@example.invalid"  # RFC 2606: can never reach a real mailbox
_PHONE_PREFIX = "+999"  # ITU-T reserved country code: never a real subscriber
_PHONE_DIGITS = 12


def builtin_length(name: str) -> int:
    """The length of the text a pseudonym strategy writes (0 for ``"null"``)."""
    if name == "random_email":
        return len("anon.") + _EMAIL_HEX + len(_EMAIL_DOMAIN)
    if name == "random_phone":
        return len(_PHONE_PREFIX) + _PHONE_DIGITS
    if name == "redact":
        return len(REDACTED)
    return 0


def _digest(key: bytes | None, strategy: str, value: Any, attempt: int) -> bytes:
    if key is None:
        return secrets.token_bytes(32)
    # attempt > 0 only after a collision in a unique column: a fixed, data-derived re-draw.
    label = strategy if attempt == 0 else f"{strategy}#{attempt}"
    message = label.encode() + b"\0" + str(value).encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).digest()


Masker = Callable[[Any, int], Any]


def make_masker(strategy: str, seed: str | bytes | None, max_length: int | None) -> Masker:
    """``masker(value, attempt)``: the replacement of one original value.

    ``attempt`` is 0 except when the first pseudonym collided in a unique column. A NULL
    stays NULL for the pseudonym strategies (there is nothing to hide, and a nullable
    unique column may hold many NULLs).
    """
    key = seed.encode() if isinstance(seed, str) else seed
    if strategy == "null":
        return lambda value, attempt: None
    if strategy == "redact":
        text = REDACTED if max_length is None else REDACTED[:max_length]
        return lambda value, attempt: text
    if strategy == "random_email":

        def email(value: Any, attempt: int) -> Any:
            if value is None:
                return None
            digest = _digest(key, strategy, value, attempt)
            return f"anon.{digest.hex()[:_EMAIL_HEX]}{_EMAIL_DOMAIN}"

        return email

    def phone(value: Any, attempt: int) -> Any:
        if value is None:
            return None
        digest = _digest(key, strategy, value, attempt)
        number = int.from_bytes(digest[:8], "big") % 10**_PHONE_DIGITS
        return f"{_PHONE_PREFIX}{number:0{_PHONE_DIGITS}d}"

    return phone
