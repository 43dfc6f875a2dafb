"""Permission checks as decorators, with object scopes and a queryset filter.

Usage::

    from dorm.contrib.permissions import grant, permitted, requires, requires_any

    @requires("article.edit", scope="article")
    def edit(user, article, payload): ...           # a global or a per-article grant

    @requires_any("admin.read", "audit.read")
    def view_audit(user): ...

    grant(alice, "article.edit", obj=article)       # alice may edit this article only
    permitted(alice, "article.edit", Article.objects.all())   # the rows she may edit

A refused call raises ``PermissionDenied`` naming the permission, the user and the object.
Grants live in ``PermissionGrant`` / ``GroupMembership`` (create both tables);
``set_permission_source`` plugs in any other source.
"""

from __future__ import annotations

from dorm.contrib.permissions.decorators import requires, requires_any
from dorm.contrib.permissions.exceptions import PermissionDenied
from dorm.contrib.permissions.models import GroupMembership, PermissionGrant
from dorm.contrib.permissions.sources import (
    ModelPermissionSource,
    PermissionSource,
    add_to_group,
    get_permission_source,
    grant,
    grant_group,
    permitted,
    revoke,
    set_permission_source,
)

__version__ = "1.0.0"

__all__ = [
    "GroupMembership",
    "ModelPermissionSource",
    "PermissionDenied",
    "PermissionGrant",
    "PermissionSource",
    "__version__",
    "add_to_group",
    "get_permission_source",
    "grant",
    "grant_group",
    "permitted",
    "requires",
    "requires_any",
    "revoke",
    "set_permission_source",
]
