"""Checks on names that reach SQL as identifiers: annotation and aggregate aliases.

Every identifier dorm writes goes through ``ops.quote_name``, which always quotes and
escapes. Aliases come from keyword arguments, often from user input in web code
(``values(**{column: F(...)})``), so they are also held to the rule Django applies since
its 2022 security releases: no whitespace, quotation marks, semicolons or SQL comments.
"""

from __future__ import annotations

import re

__all__ = ["check_alias"]

_FORBIDDEN = re.compile(r"[\s'\"`\[\];\x00]|--|/\*|\*/")


def check_alias(alias: object) -> str:
    """Return ``alias`` if it may name an annotation or aggregate; raise otherwise.

    :raises TypeError: the alias is not a string.
    :raises ValueError: the alias is empty or contains whitespace, a quotation mark, a
        bracket, a semicolon, an SQL comment marker or an unprintable character.
    """
    if not isinstance(alias, str):
        raise TypeError(f"an alias must be a string, got {alias!r}")
    # isprintable() is False for control, format (zero-width), surrogate and unassigned
    # characters: text that is invisible in a log or cannot be encoded for the driver.
    if not alias or not alias.isprintable() or _FORBIDDEN.search(alias):
        raise ValueError(
            f"the alias {alias!r} is not allowed: aliases may not be empty or contain "
            f"whitespace, quotation marks, brackets, semicolons, SQL comments (--, /*, */) "
            f"or unprintable characters"
        )
    return alias
