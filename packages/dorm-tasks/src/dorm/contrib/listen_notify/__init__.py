"""PostgreSQL LISTEN/NOTIFY for dorm: a dedicated listening connection and a transactional notify.

Usage::

    from dorm.contrib.listen_notify import Listener, notify

    with Listener("tasks") as listener:        # its own autocommit connection
        ...
        if listener.wait(timeout=5.0):         # True as soon as a NOTIFY arrives
            ...

    with dorm.transaction.atomic():
        notify("tasks")                        # delivered at COMMIT, dropped on ROLLBACK

Only PostgreSQL has LISTEN/NOTIFY; elsewhere ``Listener`` raises ``NotSupportedError`` and
``supports_listen_notify(alias)`` is False, so callers fall back to polling.
"""

from __future__ import annotations

from dorm.contrib.listen_notify.listener import (
    Listener,
    Notification,
    notify,
    supports_listen_notify,
)

__all__ = ["Listener", "Notification", "notify", "supports_listen_notify"]
