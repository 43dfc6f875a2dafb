"""Proxy models (``Meta.proxy = True``): another class over the table of a concrete model.

A proxy shares the table, the fields and the reverse relations of its concrete model and
has its own managers, ordering and methods; its queries return proxy instances and its
saves and deletes send signals with the proxy class as sender, as in Django. It has no
table: migrations leave it out and ``SchemaEditor.create_model`` refuses it.
"""

from __future__ import annotations

import copy
from typing import Any

from dorm import signals
from dorm.exceptions import FieldError, MultipleObjectsReturned, ObjectDoesNotExist
from dorm.models.fields import Field
from dorm.models.manager import Manager
from dorm.models.options import Options

__all__ = ["prepare_proxy"]


def prepare_proxy(
    cls: Any, meta: Any, app_label: str, concrete_parents: list[Any], declared: dict[str, Any]
) -> Any:
    """Finish the class ``cls`` of a proxy model (called by ModelBase)."""
    name = cls.__name__
    concrete = {p._meta.concrete_model for p in concrete_parents}
    if len(concrete) != 1:
        found = ", ".join(sorted(p.__name__ for p in concrete_parents)) or "none"
        raise TypeError(
            f"proxy model {name} needs exactly one concrete model among its bases; found: {found}"
        )
    parent = concrete_parents[0]
    fields = [k for k, v in declared.items() if isinstance(v, Field)]
    if fields:
        raise FieldError(
            f"proxy model {name} cannot add fields ({', '.join(fields)}): it uses the table "
            f"of {parent.__name__}; add them there, or drop Meta.proxy"
        )
    popts = parent._meta
    inherited: dict[str, Any] = {"db_table": popts.db_table}
    for option in ("ordering", "get_latest_by"):
        # As in Django, a child of a concrete model keeps these unless it sets its own.
        if option not in vars(meta) and getattr(popts, option):
            inherited[option] = getattr(popts, option)
    opts = Options(type("Meta", (meta,), inherited), app_label, name)
    opts.model = cls
    opts.concrete_model = popts.concrete_model
    cls._meta = opts
    opts.local_fields = list(popts.local_fields)
    opts.local_many_to_many = list(popts.local_many_to_many)
    opts.pk = popts.pk
    opts.parents = popts.parents  # a proxy of a multi-table child reads its parents too
    # Shared, so reverse relations declared later (a ForeignKey to the parent) show here too.
    opts.related_objects = popts.related_objects
    opts._expire_cache()
    for attr, value in sorted(
        declared.items(), key=lambda kv: getattr(kv[1], "creation_counter", 0)
    ):
        value.contribute_to_class(cls, attr)
    if not opts.managers:
        for manager in popts.managers:
            copy.copy(manager).contribute_to_class(cls, manager.name)
    if not opts.managers:
        Manager().contribute_to_class(cls, "objects")
    module = cls.__module__
    cls.DoesNotExist = type(
        "DoesNotExist",
        (getattr(parent, "DoesNotExist", ObjectDoesNotExist),),
        {"__module__": module, "__qualname__": f"{name}.DoesNotExist"},
    )
    cls.MultipleObjectsReturned = type(
        "MultipleObjectsReturned",
        (getattr(parent, "MultipleObjectsReturned", MultipleObjectsReturned),),
        {"__module__": module, "__qualname__": f"{name}.MultipleObjectsReturned"},
    )
    from dorm.models.base import _check_meta

    _check_meta(cls)
    opts.apps.register_model(opts.app_label, cls)
    signals.class_prepared.send(sender=cls)
    return cls
