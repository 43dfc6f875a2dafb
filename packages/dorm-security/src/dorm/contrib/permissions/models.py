"""The tables of the model-backed permission source: grants and group memberships."""

from __future__ import annotations

import dorm

__all__ = ["GroupMembership", "PermissionGrant"]


class PermissionGrant(dorm.Model):
    """One permission given to a user (``user_id``) or a group (``group``).

    With ``object_type`` (a model label, lower case) and ``object_id`` (the primary key as
    text) the grant holds for that one object only; without them it holds everywhere.
    """

    permission = dorm.CharField(max_length=150)
    user_id = dorm.CharField(max_length=64, null=True)
    group = dorm.CharField(max_length=150, null=True)
    object_type = dorm.CharField(max_length=150, null=True)
    object_id = dorm.CharField(max_length=64, null=True)

    class Meta:
        app_label = "dorm_permissions"
        db_table = "dorm_permission_grant"
        indexes = [
            dorm.Index(fields=["permission", "user_id"]),
            dorm.Index(fields=["permission", "group"]),
        ]


class GroupMembership(dorm.Model):
    """``user_id`` belongs to ``group``."""

    user_id = dorm.CharField(max_length=64)
    group = dorm.CharField(max_length=150)

    class Meta:
        app_label = "dorm_permissions"
        db_table = "dorm_group_membership"
        unique_together = [("user_id", "group")]
