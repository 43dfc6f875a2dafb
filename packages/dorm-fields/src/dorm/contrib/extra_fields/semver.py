"""``SemVer`` (a version string ordered by SemVer 2.0.0 precedence) and ``SemverField``."""

from __future__ import annotations

import re
from typing import Any

from dorm.contrib.extra_fields.base import ExtraField

__all__ = ["SemVer", "SemverField"]

# The grammar of semver.org section 2-10, written out: numeric identifiers have no
# leading zeros; pre-release identifiers are numeric (no leading zero) or alphanumeric;
# build identifiers are any non-empty [0-9A-Za-z-]. [0-9], not \d: \d matches other digits.
_NUM = r"(?:0|[1-9][0-9]*)"
_PRE_ID = rf"(?:{_NUM}|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD_ID = r"[0-9A-Za-z-]+"
_SEMVER = re.compile(
    rf"(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    rf"(?:-(?P<pre>{_PRE_ID}(?:\.{_PRE_ID})*))?"
    rf"(?:\+(?P<build>{_BUILD_ID}(?:\.{_BUILD_ID})*))?"
)


class SemVer(str):
    """A SemVer 2.0.0 version: the text as given, compared by precedence.

    ``<``, ``<=``, ``>``, ``>=`` follow semver.org section 11 (``1.0.0-alpha < 1.0.0``;
    build metadata is ignored). ``==`` and hashing stay those of the text, so
    ``1.0.0+a`` and ``1.0.0+b`` are different values of equal precedence.

    :raises ValueError: the text is not a SemVer 2.0.0 version.
    """

    __slots__ = ()

    def __new__(cls, value: str) -> SemVer:
        if not isinstance(value, str) or not _SEMVER.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a SemVer 2.0.0 version (MAJOR.MINOR.PATCH with optional "
                f"-pre.release and +build, no leading zeros, no 'v' prefix)"
            )
        return super().__new__(cls, value)

    def _parts(self) -> re.Match[str]:
        match = _SEMVER.fullmatch(self)
        assert match is not None
        return match

    @property
    def major(self) -> int:
        return int(self._parts()["major"])

    @property
    def minor(self) -> int:
        return int(self._parts()["minor"])

    @property
    def patch(self) -> int:
        return int(self._parts()["patch"])

    @property
    def prerelease(self) -> tuple[str, ...]:
        pre = self._parts()["pre"]
        return tuple(pre.split(".")) if pre else ()

    @property
    def build(self) -> tuple[str, ...]:
        build = self._parts()["build"]
        return tuple(build.split(".")) if build else ()

    def precedence_key(self) -> tuple[Any, ...]:
        """Return a tuple that sorts as SemVer precedence does."""
        m = self._parts()
        core = (int(m["major"]), int(m["minor"]), int(m["patch"]))
        if not m["pre"]:
            return (*core, 1, ())
        # Numeric identifiers sort numerically and before alphanumeric ones; a longer
        # list of equal leading identifiers sorts after the shorter one (tuple order).
        ids = tuple(
            (0, int(part), "") if part.isdigit() else (1, 0, part) for part in m["pre"].split(".")
        )
        return (*core, 0, ids)

    def __repr__(self) -> str:
        return f"SemVer({str(self)!r})"

    def __lt__(self, other: object) -> bool:
        other_key = _key_of(other)
        if other_key is None:
            return NotImplemented
        return self.precedence_key() < other_key

    def __le__(self, other: object) -> bool:
        other_key = _key_of(other)
        if other_key is None:
            return NotImplemented
        return self.precedence_key() <= other_key

    def __gt__(self, other: object) -> bool:
        other_key = _key_of(other)
        if other_key is None:
            return NotImplemented
        return self.precedence_key() > other_key

    def __ge__(self, other: object) -> bool:
        other_key = _key_of(other)
        if other_key is None:
            return NotImplemented
        return self.precedence_key() >= other_key

    __hash__ = str.__hash__
    __eq__ = str.__eq__


def _key_of(other: object) -> tuple[Any, ...] | None:
    if isinstance(other, SemVer):
        return other.precedence_key()
    if isinstance(other, str):
        return SemVer(other).precedence_key()
    return None


class SemverField(ExtraField):
    """A SemVer 2.0.0 version, stored as text; values are ``SemVer`` strings.

    Python compares values by precedence; SQL ``ORDER BY`` on the column is text order.
    """

    internal_type = "SemverField"
    empty_default = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 255)
        super().__init__(*args, **kwargs)

    def convert(self, value: Any) -> SemVer:
        if isinstance(value, SemVer):
            return value
        if not isinstance(value, str):
            raise self.error(value, "a SemVer 2.0.0 version string")
        if self.max_length is not None and len(value) > self.max_length:
            raise self.error(value, f"a version of at most {self.max_length} characters")
        try:
            return SemVer(value)
        except ValueError:
            raise self.error(
                value,
                "a SemVer 2.0.0 version (MAJOR.MINOR.PATCH[-pre][+build], no leading "
                "zeros, no 'v' prefix)",
            ) from None

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("max_length") == 255:
            del kwargs["max_length"]
        return name, path, args, kwargs
