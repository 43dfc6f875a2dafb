"""``autoslug("name")``: a SlugField default filled from another field when the row is saved."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from dorm.exceptions import FieldDoesNotExist, FieldError
from dorm.models.fields import SlugField

__all__ = ["AutoSlug", "autoslug", "fill_autoslugs", "slugify"]

_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    """Return ``text`` as an ASCII slug: ``"Crème brûlée!"`` -> ``"creme-brulee"``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")


class AutoSlug:
    """The default object ``autoslug(source)`` returns (see ``autoslug``)."""

    __slots__ = ("source",)

    def __init__(self, source: str) -> None:
        if not isinstance(source, str) or not source.isidentifier():
            raise ValueError(f"autoslug: source must be a field name, got {source!r}")
        self.source = source

    def __call__(self) -> str:
        return ""  # filled in by the dorm_pre_save hook, when the source value is known

    def __repr__(self) -> str:
        return f"autoslug({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AutoSlug) and other.source == self.source

    def __hash__(self) -> int:
        return hash(("autoslug", self.source))

    def deconstruct(self) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        """Return how migrations rebuild this default."""
        return "dorm.contrib.extra_fields.autoslug", (self.source,), {}


def autoslug(source: str) -> AutoSlug:
    """Return a SlugField default that slugifies field ``source`` when the object is saved.

    ``slug = dorm.SlugField(default=autoslug("name"))``: on ``save()`` an empty slug is
    set from ``slugify(obj.name)``; when another row of the model already has it, ``-2``,
    ``-3``, ... is appended (cut to the field's max_length). A slug set by hand is kept.
    Add ``unique=True`` to have the database enforce uniqueness against concurrent saves.
    ``bulk_create`` does not call save hooks, so it leaves such slugs empty.
    """
    return AutoSlug(source)


#: The class attribute caching a model's autoslug fields (read on every save of every model
#: while the plugin is installed, so a plain attribute rather than a weak mapping).
_CACHE_ATTR = "_dorm_autoslug_fields"


def _autoslug_fields(model: type) -> list[tuple[Any, str]]:
    found: list[tuple[Any, str]] | None = model.__dict__.get(_CACHE_ATTR)
    if found is None:
        meta = getattr(model, "_meta", None)
        fields = meta.concrete_fields if meta is not None else []
        found = [
            (f, f.default.source)
            for f in fields
            if isinstance(f, SlugField) and isinstance(f.default, AutoSlug)
        ]
        setattr(model, _CACHE_ATTR, found)
    return found


def fill_autoslugs(model: type, instance: Any, using: str) -> None:
    """Set every empty autoslug field of ``instance`` (called from ``dorm_pre_save``)."""
    found = model.__dict__.get(_CACHE_ATTR)
    for field, source in found if found is not None else _autoslug_fields(model):
        if instance.__dict__.get(field.attname):
            continue
        try:
            model._meta.get_field(source)  # type: ignore[attr-defined]
        except FieldDoesNotExist:
            raise FieldError(
                f"{model.__name__}.{field.name}: autoslug({source!r}) names no field of "
                f"{model.__name__}; fields are: "
                f"{', '.join(f.name for f in model._meta.fields)}"  # type: ignore[attr-defined]
            ) from None
        base = slugify(str(getattr(instance, source) or "")) or model.__name__.lower()
        limit = field.max_length or 50
        candidate = base[:limit].rstrip("-")
        taken = model._default_manager.using(using)  # type: ignore[attr-defined]
        if instance.pk is not None:
            taken = taken.exclude(pk=instance.pk)
        n = 1
        while taken.filter(**{field.attname: candidate}).exists():
            n += 1
            suffix = f"-{n}"
            candidate = base[: limit - len(suffix)].rstrip("-") + suffix
        instance.__dict__[field.attname] = candidate
