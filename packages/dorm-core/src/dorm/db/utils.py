"""Sensitive values: the column-name pattern registry and the masking used in logs and errors.

The import path is fixed by the public API (``from dorm.db.utils import
add_sensitive_pattern``). A bound value is masked as ``'***'`` when its column is marked
``pii=True`` or its column name contains one of the patterns (case-insensitive).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

__all__ = [
    "MASK",
    "DEFAULT_SENSITIVE_PATTERNS",
    "add_sensitive_pattern",
    "is_sensitive_name",
    "mask_message",
    "mask_params",
    "patterns_version",
    "reset_sensitive_patterns",
    "sensitive_patterns",
]

MASK = "***"
DEFAULT_SENSITIVE_PATTERNS = ("password", "passwd", "token", "secret", "api_key", "apikey")

_lock = threading.Lock()
_patterns: tuple[str, ...] = DEFAULT_SENSITIVE_PATTERNS
_version = 0


def add_sensitive_pattern(*patterns: str) -> None:
    """Treat every column whose name contains one of ``patterns`` as sensitive."""
    global _patterns, _version
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern.strip():
            raise ValueError(f"a sensitive pattern must be a non-empty string, got {pattern!r}")
    with _lock:
        new = [p.strip().lower() for p in patterns if p.strip().lower() not in _patterns]
        _patterns = (*_patterns, *new)
        _version += 1


def reset_sensitive_patterns() -> None:
    """Go back to the default patterns (password, token, secret, api_key, ...)."""
    global _patterns, _version
    with _lock:
        _patterns = DEFAULT_SENSITIVE_PATTERNS
        _version += 1


def sensitive_patterns() -> tuple[str, ...]:
    return _patterns


def patterns_version() -> int:
    """A counter that changes whenever the patterns change (for caches keyed on it)."""
    return _version


def is_sensitive_name(name: str) -> bool:
    lowered = name.lower()
    return any(p in lowered for p in _patterns)


def mask_params(params: Sequence[object], sensitive: Iterable[int] | None) -> tuple[object, ...]:
    """Return ``params`` with the positions in ``sensitive`` replaced by ``'***'``."""
    if not sensitive:
        return tuple(params)
    hidden = set(sensitive)
    return tuple(MASK if i in hidden else p for i, p in enumerate(params))


def mask_message(message: str, params: Sequence[object], sensitive: Iterable[int] | None) -> str:
    """Remove the text of every sensitive bound value from a driver's error message."""
    if not sensitive:
        return message
    for i in sensitive:
        if i >= len(params):
            continue
        value = params[i]
        if value is None:
            continue
        text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
        if text:
            message = message.replace(text, MASK)
    return message
