"""The errors of dorm-observability's N+1 detector."""

from __future__ import annotations

from dorm.exceptions import DormError

__all__ = ["NPlusOneError"]


class NPlusOneError(DormError):
    """A strict ``detect()`` scope saw the same query repeated from one line of code.

    ``findings`` holds what was detected (``Finding`` objects).
    """

    def __init__(self, message: str, findings: list[object] | None = None) -> None:
        super().__init__(message)
        self.findings = list(findings or [])
