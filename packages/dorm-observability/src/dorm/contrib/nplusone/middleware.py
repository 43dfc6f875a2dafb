"""``NPlusOneMiddleware``: a ``detect()`` scope around every request of a WSGI or ASGI app."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from dorm.contrib.nplusone.detector import detect

__all__ = ["NPlusOneMiddleware"]


class NPlusOneMiddleware:
    """Wrap ``app`` (WSGI or ASGI, told apart by whether it is a coroutine function).

    Each HTTP request runs in its own scope with the given ``detect()`` options; with
    ``strict=True`` a request with an N+1 pattern fails with NPlusOneError (for tests and
    development). A WSGI response body is read inside the scope, so queries made while it
    is produced count too. ``on_findings(findings)`` is called after each request that had
    some.
    """

    def __init__(
        self,
        app: Any,
        *,
        threshold: int = 2,
        strict: bool = False,
        on_findings: Callable[[list[Any]], None] | None = None,
    ) -> None:
        if not callable(app):
            raise TypeError(f"NPlusOneMiddleware: app must be a WSGI or ASGI callable, got {app!r}")
        self.app = app
        self.options = {"threshold": threshold, "strict": strict}
        self.on_findings = on_findings
        # An ASGI app is a coroutine function, or an object whose __call__ is one.
        self.is_asgi = inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(
            type(app).__call__
        )

    def __call__(self, *args: Any) -> Any:
        if self.is_asgi:
            return self._asgi(*args)
        return self._wsgi(*args)

    def _report(self, scope: Any) -> None:
        if self.on_findings is not None and scope.findings:
            self.on_findings(list(scope.findings))

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        scope = detect(**self.options)  # type: ignore[arg-type]
        try:
            with scope:
                result = self.app(environ, start_response)
                try:
                    body = list(result)
                finally:
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
        finally:
            self._report(scope)
        return body

    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        detection = detect(**self.options)  # type: ignore[arg-type]
        try:
            async with detection:
                await self.app(scope, receive, send)
        finally:
            self._report(detection)
