"""UUID (v4 / v7), JSON, binary and IP address fields."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from dorm.models.fields import Field

if TYPE_CHECKING:
    from dorm.models.base import Model

__all__ = ["BinaryField", "GenericIPAddressField", "JSONField", "UUIDField", "uuid7"]


_uuid7_lock = threading.Lock()
_uuid7_last = (0, 0)  # (milliseconds, 12-bit counter)


def uuid7() -> uuid.UUID:
    """Return an RFC 9562 UUIDv7, strictly increasing within this process.

    48 bits of Unix milliseconds, then a 12-bit counter in ``rand_a`` (method 1 of the
    RFC) that restarts at a random value each millisecond and carries into the
    timestamp when it overflows, then 62 random bits.
    """
    global _uuid7_last
    with _uuid7_lock:
        ms = time.time_ns() // 1_000_000
        last_ms, last_counter = _uuid7_last
        if ms > last_ms:
            counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave headroom
        else:
            ms, counter = last_ms, last_counter + 1
            if counter > 0xFFF:
                ms, counter = last_ms + 1, 0
        _uuid7_last = (ms, counter)
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)


class UUIDField(Field):
    """UUIDs, native on PostgreSQL. ``version=7`` generates time-ordered UUIDv7 defaults.

    A primary key without a default gets one generated (version 4 unless ``version=7``).
    """

    internal_type = "UUIDField"

    def __init__(self, *args: Any, version: int | None = None, **kwargs: Any) -> None:
        if version not in (None, 4, 7):
            raise ValueError(f"UUIDField: version must be 4 or 7, got {version!r}")
        self.version = version
        if "default" not in kwargs and (version is not None or kwargs.get("primary_key")):
            kwargs["default"] = uuid7 if version == 7 else uuid.uuid4
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, uuid.UUID):
            return value
        try:
            if isinstance(value, int):
                return uuid.UUID(int=value)
            return uuid.UUID(str(value))
        except (TypeError, ValueError, AttributeError):
            raise self._invalid(value, "a UUID") from None

    def get_prep_value(self, value: Any) -> Any:
        return self.to_python(value)

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        if self.version is not None:
            kwargs["version"] = self.version
            if kwargs.get("default") in (uuid7, uuid.uuid4):
                del kwargs["default"]
        elif kwargs.get("default") is uuid.uuid4 and self.primary_key:
            del kwargs["default"]
        return name, path, args, kwargs


class JSONField(Field):
    """JSON documents (``jsonb`` on PostgreSQL, checked text on SQLite), returned decoded."""

    internal_type = "JSONField"
    empty_values = (None,)

    def __init__(
        self,
        *args: Any,
        encoder: type[json.JSONEncoder] | None = None,
        decoder: type[json.JSONDecoder] | None = None,
        **kwargs: Any,
    ) -> None:
        self.encoder = encoder
        self.decoder = decoder
        super().__init__(*args, **kwargs)

    def dumps(self, value: Any) -> str:
        try:
            return json.dumps(value, cls=self.encoder)
        except TypeError as exc:
            raise self._invalid(value, f"JSON serialisable ({exc})") from None

    def loads(self, value: Any) -> Any:
        if value is None or not isinstance(value, (str, bytes)):
            return value
        return json.loads(value, cls=self.decoder)

    def validate(self, value: Any, model_instance: Model | None) -> None:
        super().validate(value, model_instance)
        if value is not None:
            self.dumps(value)

    def get_transform(self, name: str) -> Any:
        """A registered transform, else the key transform for ``name`` (``data__city``)."""
        found = super().get_transform(name)
        if found is not None:
            return found
        from dorm.models.json import KeyTransformFactory

        return KeyTransformFactory(name)


class BinaryField(Field):
    internal_type = "BinaryField"
    empty_values = (None, b"")
    empty_default = b""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, bytes):
            return value
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        raise self._invalid(value, "bytes")

    def get_prep_value(self, value: Any) -> Any:
        return self.to_python(value)


class GenericIPAddressField(Field):
    """IPv4 or IPv6 addresses (``inet`` on PostgreSQL), normalised to their compressed text."""

    internal_type = "GenericIPAddressField"

    def __init__(self, *args: Any, protocol: str = "both", **kwargs: Any) -> None:
        if protocol.lower() not in ("both", "ipv4", "ipv6"):
            raise ValueError(
                f"GenericIPAddressField: protocol must be both/ipv4/ipv6, got {protocol!r}"
            )
        self.protocol = protocol.lower()
        kwargs.setdefault("max_length", 39)
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> Any:
        if value is None or value == "":
            return None if value is None else value
        import ipaddress  # on first use: not a cost of ``import dorm``

        try:
            address = ipaddress.ip_address(str(value).strip())
        except ValueError:
            raise self._invalid(value, "an IP address") from None
        if self.protocol == "ipv4" and address.version != 4:
            raise self._invalid(value, "an IPv4 address")
        if self.protocol == "ipv6" and address.version != 6:
            raise self._invalid(value, "an IPv6 address")
        return str(address)

    def get_prep_value(self, value: Any) -> Any:
        return self.to_python(value) or None

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("max_length", None)
        if self.protocol != "both":
            kwargs["protocol"] = self.protocol
        return name, path, args, kwargs
