"""Where application code called into dorm: the first stack frame outside dorm and the stdlib.

Shared by the N+1 detector (the line of the loop) and ``dorm.contrib.slow_tx`` (the line
that opened a transaction). Walking frames costs a few microseconds, so callers only do it
when a scope or a threshold asks for it.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from types import FrameType
from typing import NamedTuple

__all__ = ["CodeLocation", "caller_location"]


class CodeLocation(NamedTuple):
    """A file, line and function of application code."""

    filename: str
    lineno: int
    function: str

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno} in {self.function}"


def _skipped_prefixes() -> tuple[str, ...]:
    import dorm

    prefixes = [os.path.join(os.path.abspath(p), "") for p in dorm.__path__]
    for key in ("stdlib", "platstdlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            prefixes.append(os.path.join(os.path.abspath(path), ""))
    for name in ("pluggy", "greenlet", "opentelemetry", "prometheus_client", "_pytest", "pytest"):
        module = sys.modules.get(name)
        location = getattr(module, "__file__", None)
        if location:
            prefixes.append(os.path.join(os.path.dirname(os.path.abspath(location)), ""))
    return tuple(prefixes)


_prefixes: tuple[str, ...] | None = None
_verdicts: dict[str, bool] = {}


def _is_library(filename: str) -> bool:
    verdict = _verdicts.get(filename)
    if verdict is None:
        global _prefixes
        if _prefixes is None:
            _prefixes = _skipped_prefixes()
        verdict = filename.startswith("<frozen") or os.path.abspath(filename).startswith(_prefixes)
        if len(_verdicts) > 4096:
            _verdicts.clear()
        _verdicts[filename] = verdict
    return verdict


def caller_location(skip: int = 1) -> CodeLocation | None:
    """The innermost frame of application code on the current stack, or None."""
    frame: FrameType | None = sys._getframe(skip)
    hops = 0
    while frame is not None:
        code = frame.f_code
        if not _is_library(code.co_filename):
            return CodeLocation(code.co_filename, frame.f_lineno, code.co_name)
        frame = frame.f_back
        if frame is None and hops < 4:
            # The async API runs ORM code in a greenlet whose stack ends at the bridge; the
            # coroutine that awaited it is on the stack of the greenlet that switched in.
            frame = _parent_frame(hops)
            hops += 1
    return None


def _parent_frame(hops: int) -> FrameType | None:
    greenlet = sys.modules.get("greenlet")
    if greenlet is None:
        return None
    current = greenlet.getcurrent()
    for _ in range(hops + 1):
        current = getattr(current, "parent", None)
        if current is None:
            return None
    return getattr(current, "gr_frame", None)
