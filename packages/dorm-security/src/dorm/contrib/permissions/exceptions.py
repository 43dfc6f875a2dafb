"""The errors of dorm.contrib.permissions."""

from __future__ import annotations

from typing import Any

from dorm.exceptions import DormError

__all__ = ["PermissionDenied"]


class PermissionDenied(DormError):
    """``user`` holds none of ``permissions`` (on ``obj``, for a scoped check)."""

    def __init__(self, permissions: tuple[str, ...], user: Any, obj: Any = None) -> None:
        self.permissions = permissions
        self.user = user
        self.obj = obj
        wanted = (
            f"permission {permissions[0]!r}"
            if len(permissions) == 1
            else "any of the permissions " + ", ".join(repr(p) for p in permissions)
        )
        where = ""
        if obj is not None:
            meta = getattr(obj, "_meta", None)
            label = meta.label if meta is not None else type(obj).__name__
            where = f" on {label} pk={getattr(obj, 'pk', obj)!r}"
        super().__init__(f"user {_who(user)} lacks {wanted}{where}")


def _who(user: Any) -> str:
    if user is None:
        return "None (anonymous)"
    pk = getattr(user, "pk", None)
    return f"{user!s} (pk={pk!r})" if pk is not None else repr(user)
