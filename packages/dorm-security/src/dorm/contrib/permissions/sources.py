"""Where permissions come from: the ``PermissionSource`` protocol and its model-backed default.

A source answers three questions: does ``user`` hold ``perm`` (globally, or on ``obj``),
the same without blocking an event loop, and which rows of a queryset may ``user`` see.
``ModelPermissionSource`` reads ``PermissionGrant`` / ``GroupMembership``; any object with
the same methods can replace it (``set_permission_source``), e.g. one asking an IdP.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = [
    "ModelPermissionSource",
    "PermissionSource",
    "add_to_group",
    "get_permission_source",
    "grant",
    "grant_group",
    "permitted",
    "revoke",
    "set_permission_source",
]


@runtime_checkable
class PermissionSource(Protocol):
    """What ``@requires`` and ``permitted`` ask."""

    def has_perm(self, user: Any, perm: str, obj: Any = None) -> bool: ...

    async def ahas_perm(self, user: Any, perm: str, obj: Any = None) -> bool: ...

    def permitted(self, user: Any, perm: str, queryset: Any) -> Any: ...


def _user_key(user: Any) -> str | None:
    """A user's id as stored in the grant tables: ``str(user.pk)``; None is anonymous."""
    if user is None:
        return None
    pk = getattr(user, "pk", user)
    return None if pk is None else str(pk)


def _object_key(obj: Any) -> tuple[str, str]:
    meta = getattr(obj, "_meta", None)
    if meta is None or getattr(obj, "pk", None) is None:
        raise TypeError(f"a scoped permission needs a saved model instance, got {obj!r}")
    return meta.label_lower, str(obj.pk)


def _check_perm(perm: Any) -> str:
    if not isinstance(perm, str) or not perm.strip():
        raise ValueError(f"a permission is a non-empty str like 'article.edit', got {perm!r}")
    return perm


class ModelPermissionSource:
    """Grants in the ``dorm_permission_grant`` table, to users and to their groups."""

    def __init__(self, using: str = "default") -> None:
        self.using = using

    def _grants(self, user: Any, perm: str) -> Any:
        from dorm import Q
        from dorm.contrib.permissions.models import GroupMembership, PermissionGrant

        key = _user_key(user)
        groups = GroupMembership._default_manager.using(self.using).filter(user_id=key)
        return PermissionGrant._default_manager.using(self.using).filter(
            Q(user_id=key) | Q(group__in=groups.values("group")), permission=_check_perm(perm)
        )

    def _scoped(self, user: Any, perm: str, obj: Any) -> Any:
        from dorm import Q

        grants = self._grants(user, perm)
        if obj is None:
            return grants.filter(object_type__isnull=True)
        label, pk = _object_key(obj)
        return grants.filter(Q(object_type__isnull=True) | Q(object_type=label, object_id=pk))

    def has_perm(self, user: Any, perm: str, obj: Any = None) -> bool:
        if _user_key(user) is None:
            return False
        return bool(self._scoped(user, perm, obj).exists())

    async def ahas_perm(self, user: Any, perm: str, obj: Any = None) -> bool:
        if _user_key(user) is None:
            return False
        return bool(await self._scoped(user, perm, obj).aexists())

    def permitted(self, user: Any, perm: str, queryset: Any) -> Any:
        model = queryset.model
        if _user_key(user) is None:
            return queryset.none()
        grants = self._grants(user, perm)
        if grants.filter(object_type__isnull=True).exists():
            return queryset
        ids = grants.filter(object_type=model._meta.label_lower).values_list("object_id", flat=True)
        to_python = model._meta.pk.to_python
        return queryset.filter(pk__in=[to_python(i) for i in ids])


_source: PermissionSource = ModelPermissionSource()


def get_permission_source() -> PermissionSource:
    """The source ``@requires``, ``@requires_any`` and ``permitted`` ask by default."""
    return _source


def set_permission_source(source: PermissionSource) -> PermissionSource:
    """Make ``source`` the default; return the previous one."""
    global _source
    if not isinstance(source, PermissionSource):
        raise TypeError(
            f"{source!r} is not a permission source: it needs has_perm(user, perm, obj), "
            "ahas_perm(user, perm, obj) and permitted(user, perm, queryset)"
        )
    previous, _source = _source, source
    return previous


def permitted(user: Any, perm: str, queryset: Any, source: PermissionSource | None = None) -> Any:
    """The rows of ``queryset`` that ``user`` may access with ``perm``: all of them for a
    global grant, else those granted one by one (none for an anonymous user)."""
    return (source or _source).permitted(user, _check_perm(perm), queryset)


def _grant_row(perm: str, obj: Any, using: str, **who: Any) -> Any:
    from dorm.contrib.permissions.models import PermissionGrant

    scope: dict[str, Any] = {"object_type": None, "object_id": None}
    if obj is not None:
        scope["object_type"], scope["object_id"] = _object_key(obj)
    rows = PermissionGrant._default_manager.using(using)
    return rows.get_or_create(permission=_check_perm(perm), **who, **scope)[0]


def grant(user: Any, perm: str, obj: Any = None, using: str = "default") -> Any:
    """Give ``user`` the permission ``perm`` (on ``obj`` only, when given)."""
    key = _user_key(user)
    if key is None:
        raise ValueError("grant() needs a user with a primary key, got None")
    return _grant_row(perm, obj, using, user_id=key, group=None)


def grant_group(group: str, perm: str, obj: Any = None, using: str = "default") -> Any:
    """Give every member of ``group`` the permission ``perm`` (on ``obj`` only, when given)."""
    if not isinstance(group, str) or not group:
        raise ValueError(f"a group is a non-empty str, got {group!r}")
    return _grant_row(perm, obj, using, user_id=None, group=group)


def add_to_group(user: Any, group: str, using: str = "default") -> None:
    """Make ``user`` a member of ``group``."""
    from dorm.contrib.permissions.models import GroupMembership

    key = _user_key(user)
    if key is None or not isinstance(group, str) or not group:
        raise ValueError(f"add_to_group() needs a saved user and a group name, got {user!r}")
    GroupMembership._default_manager.using(using).get_or_create(user_id=key, group=group)


def revoke(user: Any, perm: str, obj: Any = None, using: str = "default") -> int:
    """Remove ``user``'s own grant of ``perm`` (on ``obj``, when given); return how many."""
    from dorm.contrib.permissions.models import PermissionGrant

    rows = PermissionGrant._default_manager.using(using).filter(
        permission=_check_perm(perm), user_id=_user_key(user)
    )
    if obj is None:
        rows = rows.filter(object_type__isnull=True)
    else:
        label, pk = _object_key(obj)
        rows = rows.filter(object_type=label, object_id=pk)
    return int(rows.delete()[0])
