"""``PathField``: POSIX paths, returned as ``pathlib.PurePosixPath``."""

from __future__ import annotations

import pathlib
from typing import Any

from dorm.contrib.extra_fields.base import ExtraField

__all__ = ["PathField"]


class PathField(ExtraField):
    """A POSIX path stored as text; values are ``PurePosixPath`` (``a//b/./c`` -> ``a/b/c``).

    A NUL character is always rejected. ``allow_absolute=False`` rejects ``/etc/passwd``;
    ``allow_parent=False`` rejects any ``..`` component (both are allowed by default).
    """

    internal_type = "PathField"
    empty_default = ""

    def __init__(
        self, *args: Any, allow_absolute: bool = True, allow_parent: bool = True, **kwargs: Any
    ) -> None:
        for key, flag in (("allow_absolute", allow_absolute), ("allow_parent", allow_parent)):
            if not isinstance(flag, bool):
                raise ValueError(f"PathField: {key} must be True or False, got {flag!r}")
        self.allow_absolute = allow_absolute
        self.allow_parent = allow_parent
        kwargs.setdefault("max_length", 4096)  # PATH_MAX on Linux
        super().__init__(*args, **kwargs)

    def convert(self, value: Any) -> pathlib.PurePosixPath:
        if isinstance(value, pathlib.PurePath):
            value = value.as_posix()
        if not isinstance(value, str):
            raise self.error(value, "a POSIX path string")
        if "\x00" in value:
            raise self.error(value, "a path without NUL characters")
        path = pathlib.PurePosixPath(value)
        if not self.allow_absolute and path.is_absolute():
            raise self.error(value, "a relative path (absolute paths are not allowed here)")
        if not self.allow_parent and ".." in path.parts:
            raise self.error(value, "a path without '..' components")
        if self.max_length is not None and len(str(path)) > self.max_length:
            raise self.error(value, f"a path of at most {self.max_length} characters")
        return path

    def from_db_value(self, value: Any) -> Any:
        # The path as stored, even where allow_absolute / allow_parent now refuse it.
        if isinstance(value, str) and value:
            return pathlib.PurePosixPath(value)
        return value

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("max_length") == 4096:
            del kwargs["max_length"]
        if not self.allow_absolute:
            kwargs["allow_absolute"] = False
        if not self.allow_parent:
            kwargs["allow_parent"] = False
        return name, path, args, kwargs
