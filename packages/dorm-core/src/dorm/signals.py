"""Django-style signals, dispatched through the pluggy hooks so plugins see the same events.

``post_save.connect(receiver, sender=Model)`` registers an in-process receiver (held by a
weak reference unless ``weak=False``); ``post_save.send(...)`` calls the receivers whose
sender matches, then the ``dorm_post_save`` hook of every plugin. Receivers take
``sender`` and keyword arguments, as in Django; an exception propagates to the sender.
A receiver (or a plugin's hookimpl) may be a coroutine function: sent from the async API
it is awaited on the event loop; from plain sync code it runs on a private loop.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any

from dorm import plugins

__all__ = [
    "Signal",
    "bulk_created",
    "bulk_updated",
    "class_prepared",
    "m2m_changed",
    "post_delete",
    "post_query",
    "post_save",
    "pre_delete",
    "pre_query",
    "pre_save",
    "queryset_deleted",
    "query_failed",
    "queryset_updated",
    "receiver",
]

logger = logging.getLogger("dorm.signals")

Receiver = Callable[..., Any]
_Ref = Callable[[], Receiver | None]


def _strong(fn: Receiver) -> _Ref:
    return lambda: fn


def _make_ref(fn: Receiver, weak: bool, on_dead: Callable[[Any], None]) -> _Ref:
    if not weak:
        return _strong(fn)
    if hasattr(fn, "__self__") and hasattr(fn, "__func__"):
        return weakref.WeakMethod(fn, on_dead)
    return weakref.ref(fn, on_dead)


def _sender_key(sender: object) -> Hashable:
    # Aliases ("default") are compared by value; classes and other objects by identity.
    if sender is None or isinstance(sender, str):
        return sender
    return id(sender)


def _target_id(fn: Receiver) -> tuple[int, int] | int:
    if hasattr(fn, "__self__") and hasattr(fn, "__func__"):
        return (id(fn.__self__), id(fn.__func__))
    return id(fn)


class Signal:
    """A named event with in-process receivers and a matching pluggy hook.

    :param hook_name: the hookspec called on every ``send`` (``dorm_<signal name>``), or
        None for a signal that only has in-process receivers.
    :param observer: receivers and hookimpls only observe: an exception is logged on
        ``dorm.signals`` / ``dorm.plugins`` and never reaches the sender (the query
        signals work this way, so a broken log handler cannot fail a query).
    """

    def __init__(self, hook_name: str | None = None, observer: bool = False) -> None:
        self.hook_name = hook_name
        self.observer = observer
        self._lock = threading.Lock()
        # (lookup key, sender key, reference); the list is replaced, never mutated, so
        # send() can iterate without holding the lock.
        self._receivers: list[tuple[Hashable, Hashable, _Ref]] = []
        # (the plugins' impls cache it was answered for, whether a plugin implements
        # hook_name): has_listeners() runs on every save(), update() and delete().
        self._hooked: tuple[object, bool] = (None, False)

    def __repr__(self) -> str:
        return f"<Signal {self.hook_name or 'local'} receivers={len(self._receivers)}>"

    def connect(
        self,
        receiver: Receiver,
        sender: object | None = None,
        weak: bool = True,
        dispatch_uid: Hashable | None = None,
    ) -> None:
        """Call ``receiver(signal=..., sender=..., **kwargs)`` on every send from ``sender``.

        ``sender=None`` receives from every sender. With ``weak=True`` the receiver is
        dropped once nothing else references it. Connecting the same receiver (or
        ``dispatch_uid``) for the same sender twice has no effect.
        """
        if not callable(receiver):
            raise TypeError(f"signal receivers must be callable, got {receiver!r}")
        key: Hashable = dispatch_uid if dispatch_uid is not None else _target_id(receiver)
        sender_key = _sender_key(sender)
        ref = _make_ref(receiver, weak, self._drop_dead)
        with self._lock:
            if any(k == key and s == sender_key for k, s, _r in self._receivers):
                return
            self._receivers = [*self._receivers, (key, sender_key, ref)]

    def disconnect(
        self,
        receiver: Receiver | None = None,
        sender: object | None = None,
        dispatch_uid: Hashable | None = None,
    ) -> bool:
        """Disconnect a receiver; return True if one was connected."""
        if receiver is None and dispatch_uid is None:
            raise TypeError("disconnect() needs the receiver or its dispatch_uid")
        key: Hashable = dispatch_uid if dispatch_uid is not None else _target_id(receiver)  # type: ignore[arg-type]
        sender_key = _sender_key(sender)
        with self._lock:
            kept = [r for r in self._receivers if not (r[0] == key and r[1] == sender_key)]
            found = len(kept) != len(self._receivers)
            self._receivers = kept
        return found

    def _drop_dead(self, _ref: object) -> None:
        with self._lock:
            self._receivers = [r for r in self._receivers if r[2]() is not None]

    def _live(self, sender: object) -> list[Receiver]:
        sender_key = _sender_key(sender)
        found = []
        for _key, s_key, ref in self._receivers:
            if s_key is None or s_key == sender_key:
                fn = ref()
                if fn is not None:
                    found.append(fn)
        return found

    def has_listeners(self, sender: object | None = None) -> bool:
        """Return True when a send from ``sender`` would reach a receiver or a plugin hook."""
        if self.hook_name is not None:
            known = self._hooked
            cache = plugins._impls_cache
            if known[0] is not cache or cache[0] is not plugins._pm:
                known = self._hooked = _hooked(self.hook_name)
            if known[1]:
                return True
        if not self._receivers:  # the common case on hot paths: nothing connected
            return False
        return bool(self._live(sender))

    def send(self, sender: object, **named: Any) -> list[tuple[Receiver, Any]]:
        """Send the event: receivers first, in connection order, then the plugin hook.

        Returns ``[(receiver, response), ...]`` for the in-process receivers. An exception
        from a receiver or a hookimpl propagates to the caller (see docs/plugins.md),
        except on an observer signal, where it is logged and returned as the response.
        """
        if self.observer:
            return self._send_observed(sender, named)
        responses = []
        for fn in self._live(sender) if self._receivers else ():
            response = fn(signal=self, sender=sender, **named)
            if response is not None and plugins.isawaitable(response):
                response = _resolve(response, fn)
            responses.append((fn, response))
        if self.hook_name is not None:
            for result in plugins.call(self.hook_name, sender=sender, **named):
                if result is not None and plugins.isawaitable(result):
                    _resolve(result, f"a {self.hook_name} hookimpl")
        return responses

    async def asend(self, sender: object, **named: Any) -> list[tuple[Receiver, Any]]:
        """``send()`` for coroutines: coroutine receivers are awaited, and sync receivers
        run as the async API runs sync code, so their ORM calls do not block the loop."""
        from dorm.db.bridge import run_sync

        return await run_sync(self.send, sender, **named)

    def _send_observed(self, sender: object, named: dict[str, Any]) -> list[tuple[Receiver, Any]]:
        responses: list[tuple[Receiver, Any]] = []
        for fn in self._live(sender) if self._receivers else ():
            try:
                response = fn(signal=self, sender=sender, **named)
                if response is not None and plugins.isawaitable(response):
                    response = _resolve(response, fn)
                responses.append((fn, response))
            except Exception as exc:
                logger.exception("signal receiver %r raised; the error was ignored", fn)
                responses.append((fn, exc))
        if self.hook_name is not None:
            plugins.notify(self.hook_name, sender=sender, **named)
        return responses


def _resolve(awaitable: Any, what: object) -> Any:
    from dorm.db.bridge import resolve

    return resolve(awaitable, what)


def receiver(signal: Signal | list[Signal], **kwargs: Any) -> Callable[[Receiver], Receiver]:
    """Decorate a function to connect it to ``signal`` (or each of a list of signals)."""

    def decorate(fn: Receiver) -> Receiver:
        for sig in signal if isinstance(signal, list) else [signal]:
            sig.connect(fn, **kwargs)
        return fn

    return decorate


class_prepared = Signal("dorm_class_prepared")
pre_save = Signal("dorm_pre_save")
post_save = Signal("dorm_post_save")
pre_delete = Signal("dorm_pre_delete")
post_delete = Signal("dorm_post_delete")
m2m_changed = Signal("dorm_m2m_changed")
bulk_created = Signal("dorm_bulk_created")
bulk_updated = Signal("dorm_bulk_updated")
queryset_updated = Signal("dorm_queryset_updated")
queryset_deleted = Signal("dorm_queryset_deleted")
#: Sent with ``sender=<alias>``; ``params`` are masked. Receivers only observe.
pre_query = Signal("dorm_pre_query", observer=True)
post_query = Signal("dorm_post_query", observer=True)
#: Sent with ``sender=<alias>`` only when a statement failed; receivers only observe.
query_failed = Signal("dorm_query_failed", observer=True)


def queries_observed(alias: str) -> bool:
    """True when ``pre_query`` or ``post_query`` would reach a receiver or plugin hook for
    a statement on ``alias`` (checked before every statement: one call, not two)."""
    if pre_query._receivers or post_query._receivers:
        return pre_query.has_listeners(alias) or post_query.has_listeners(alias)
    global _query_hooks
    known = _query_hooks
    cache = plugins._impls_cache
    if known[0] is not cache or cache[0] is not plugins._pm:
        known = _query_hooks = _hooked("dorm_pre_query", "dorm_post_query")
    return known[1]


def _hooked(*hook_names: str) -> tuple[object, bool]:
    """(the plugins' impls cache, whether a plugin implements one of ``hook_names``): an
    answer that stands while that cache object is the current one (register() and
    unregister() replace it). The cache is read before asking, so plugins that change
    meanwhile leave the answer under the old cache, to be asked again on the next call."""
    cache = plugins._impls_cache
    return cache, plugins.has_impls(*hook_names)


# queries_observed()'s answer for plugins, as Signal._hooked keeps a signal's.
_query_hooks: tuple[object, bool] = (None, False)
