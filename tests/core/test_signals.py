"""dorm.signals: connect / disconnect, sender filtering, weak references, dispatch order."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from dorm import plugins
from dorm.plugins import hookimpl
from dorm.signals import Signal, post_save, receiver

pytestmark = pytest.mark.usefixtures("fresh_manager")


class Author:
    pass


class Book:
    pass


def test_sender_filtering_and_arguments() -> None:
    signal = Signal()
    got: list[tuple[str, Any, dict[str, Any]]] = []

    def any_sender(signal: Signal, sender: Any, **kwargs: Any) -> str:
        got.append(("any", sender, kwargs))
        return "a"

    def books_only(signal: Signal, sender: Any, **kwargs: Any) -> str:
        got.append(("books", sender, kwargs))
        return "b"

    signal.connect(any_sender)
    signal.connect(books_only, sender=Book)
    assert signal.send(sender=Author, value=1) == [(any_sender, "a")]
    assert signal.send(sender=Book, value=2) == [(any_sender, "a"), (books_only, "b")]
    assert got == [
        ("any", Author, {"value": 1}),
        ("any", Book, {"value": 2}),
        ("books", Book, {"value": 2}),
    ]


def test_weak_receivers_are_dropped_and_strong_ones_kept() -> None:
    signal = Signal()
    calls: list[str] = []

    def weak_one(**kwargs: Any) -> None:
        calls.append("weak")

    def strong_one(**kwargs: Any) -> None:
        calls.append("strong")

    signal.connect(weak_one)
    signal.connect(strong_one, weak=False)
    del weak_one, strong_one
    gc.collect()
    signal.send(sender=None)
    assert calls == ["strong"]
    assert len(signal._receivers) == 1


def test_bound_method_receivers_are_weak_by_default() -> None:
    signal = Signal()
    calls: list[int] = []

    class Listener:
        def on(self, **kwargs: Any) -> None:
            calls.append(1)

    listener = Listener()
    signal.connect(listener.on)  # a fresh bound method each time: held via WeakMethod
    signal.send(sender=None)
    del listener
    gc.collect()
    signal.send(sender=None)
    assert calls == [1]


def test_duplicate_connect_dispatch_uid_and_disconnect() -> None:
    signal = Signal()
    calls: list[str] = []

    def handler(**kwargs: Any) -> None:
        calls.append("h")

    signal.connect(handler)
    signal.connect(handler)  # same receiver, same sender: once
    signal.connect(lambda **kw: calls.append("uid"), weak=False, dispatch_uid="audit")
    signal.connect(lambda **kw: calls.append("uid2"), weak=False, dispatch_uid="audit")
    signal.send(sender=Author)
    assert calls == ["h", "uid"]
    assert signal.disconnect(dispatch_uid="audit") is True
    assert signal.disconnect(handler) is True
    assert signal.disconnect(handler) is False
    signal.send(sender=Author)
    assert calls == ["h", "uid"]
    with pytest.raises(TypeError, match="needs the receiver or its dispatch_uid"):
        signal.disconnect()
    with pytest.raises(TypeError, match="must be callable"):
        signal.connect("not callable")  # type: ignore[arg-type]


def test_receiver_decorator_connects_to_several_signals() -> None:
    first, second = Signal(), Signal()
    seen: list[Any] = []

    @receiver([first, second], sender=Book, weak=False)
    def on_book(signal: Signal, sender: Any, **kwargs: Any) -> None:
        seen.append(signal)

    first.send(sender=Book)
    second.send(sender=Book)
    second.send(sender=Author)
    assert seen == [first, second]


def test_receivers_run_before_plugin_hooks_and_errors_propagate() -> None:
    order: list[str] = []

    class Audit:
        @hookimpl
        def dorm_post_save(self, instance: Any) -> None:
            order.append(f"plugin:{instance}")

    plugins.register(Audit(), name="audit")

    def local(instance: Any, **kwargs: Any) -> None:
        order.append(f"receiver:{instance}")
        if instance == "bad":
            raise ValueError("receiver refused bad")

    post_save.connect(local, weak=False)
    try:
        assert post_save.has_listeners(Book)
        post_save.send(
            sender=Book, instance="ok", created=True, raw=False, using="default", update_fields=None
        )
        with pytest.raises(ValueError, match="receiver refused bad"):
            post_save.send(
                sender=Book,
                instance="bad",
                created=True,
                raw=False,
                using="default",
                update_fields=None,
            )
    finally:
        post_save.disconnect(local)
    # The raising receiver stopped the dispatch: the plugin never saw "bad".
    assert order == ["receiver:ok", "plugin:ok", "receiver:bad"]


def test_has_listeners_reflects_receivers_and_plugins() -> None:
    assert not post_save.has_listeners(Book)

    class Any_:
        @hookimpl
        def dorm_post_save(self) -> None:
            pass

    plugins.register(Any_(), name="any")
    assert post_save.has_listeners(Book)
    plugins.unregister("any")
    assert not post_save.has_listeners(Book)
    assert Signal().has_listeners() is False


def test_query_signals_only_observe(caplog: pytest.LogCaptureFixture) -> None:
    from dorm.signals import post_query

    seen: list[str] = []

    class Tracer:
        @hookimpl
        def dorm_post_query(self, alias: str, sql: str) -> None:
            seen.append(f"plugin {alias} {sql}")

    plugins.register(Tracer(), name="tracer")

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("log handler down")

    def on_default(sql: str, **kwargs: Any) -> None:
        seen.append(f"receiver {sql}")

    post_query.connect(broken, weak=False)
    post_query.connect(on_default, sender="default", weak=False)
    try:
        with caplog.at_level("ERROR"):
            for alias in ("default", "replica"):
                responses = post_query.send(
                    sender=alias,
                    alias=alias,
                    vendor="sqlite",
                    sql="SELECT 1",
                    params=(),
                    duration=0.1,
                    rowcount=1,
                    error=None,
                )
    finally:
        post_query.disconnect(broken)
        post_query.disconnect(on_default, sender="default")
    assert seen == ["receiver SELECT 1", "plugin default SELECT 1", "plugin replica SELECT 1"]
    assert isinstance(responses[0][1], RuntimeError)
    assert [r.name for r in caplog.records] == ["dorm.signals", "dorm.signals"]
