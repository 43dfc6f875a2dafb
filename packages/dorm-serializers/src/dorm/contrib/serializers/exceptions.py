"""The errors of dorm-serializers."""

from __future__ import annotations

from dorm.exceptions import DormError

__all__ = ["RecordError", "SerializerError", "StreamFormatError", "UnknownFieldTypeError"]


class SerializerError(DormError):
    """Base class of dorm-serializers' own errors."""


class UnknownFieldTypeError(SerializerError, TypeError):
    """A field's class has no entry in the value-type registry."""


class StreamFormatError(SerializerError, ValueError):
    """A stream is not a dorm MessagePack stream, or holds another model's rows."""


class RecordError(SerializerError, ValueError):
    """One record of a stream or file is invalid; ``row`` is its 1-based number."""

    def __init__(self, row: int, message: str) -> None:
        super().__init__(f"record {row}: {message}")
        self.row = row
