"""Slow transaction warnings, with the line that opened the block and who blocked it.

Usage::

    from dorm.contrib import slow_tx

    slow_tx.install(threshold_ms=500)  # at process start

Every ``atomic()`` block longer than 500 ms emits one WARNING on ``dorm.contrib.slow_tx``
naming its duration and the code location that opened it, and attaches a ``dorm.slow_tx``
event to the active OpenTelemetry span. On PostgreSQL the warning names the sessions that
were blocking the transaction, when there were any.
"""

from __future__ import annotations

from dorm.contrib.slow_tx.watch import OpenTransaction, SlowTxWatch, install, installed, uninstall

__version__ = "1.0.0"

__all__ = ["OpenTransaction", "SlowTxWatch", "__version__", "install", "installed", "uninstall"]
