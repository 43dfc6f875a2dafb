"""``autoslug("name")``: a SlugField default filled from another field when the row is written.

The filling is the field's own: core's ``SlugField.pre_save`` asks its default for a value
whenever the slug is empty, so a model without an autoslug runs no code of this module
when it is saved (dorm-fields registers no save hook).
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Any

from dorm.contrib.extra_fields.base import ConvertingAttribute
from dorm.db.router import router
from dorm.exceptions import FieldDoesNotExist, FieldError, ValidationError

if TYPE_CHECKING:
    from dorm.models.fields import SlugField

__all__ = ["AutoSlug", "AutoSlugAttribute", "autoslug", "slugify"]

_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    """Return ``text`` as an ASCII slug: ``"Crème brûlée!"`` -> ``"creme-brulee"``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")


class AutoSlugAttribute(ConvertingAttribute):
    """The class attribute of an autoslug SlugField: checks a slug set by hand.

    In the constructor or by assignment, a non-empty slug must be letters, digits, ``-``
    and ``_``, within max_length. An empty slug is kept: it is made when the row is written.
    """

    def __set__(self, instance: Any, value: Any) -> None:
        field: Any = self.field
        value = field.to_python(value)
        if value is not None and value != "":
            where = f"{field.model.__name__}.{field.name}"
            if not field.pattern.fullmatch(value):
                raise ValidationError(
                    f"{where}: {field._display(value)} is not {field.what}; leave it empty "
                    f"to have it made from {field.default.source!r}",
                    code="invalid",
                )
            if field.max_length is not None and len(value) > field.max_length:
                raise ValidationError(
                    f"{where}: {field._display(value)} is not a slug of at most "
                    f"{field.max_length} characters",
                    code="invalid",
                )
        instance.__dict__[field.attname] = value


class AutoSlug:
    """The default object ``autoslug(source)`` returns (see ``autoslug``).

    A save-time default of core's SlugField: ``pre_save`` makes the value, and
    ``descriptor_class`` becomes the field's class attribute.
    """

    __slots__ = ("source",)

    descriptor_class = AutoSlugAttribute

    def __init__(self, source: str) -> None:
        if not isinstance(source, str) or not source.isidentifier():
            raise ValueError(f"autoslug: source must be a field name, got {source!r}")
        self.source = source

    def __call__(self) -> str:
        return ""  # made by pre_save, once the source value is known

    def pre_save(self, field: SlugField, instance: Any, add: bool) -> str:
        """Return a slug of ``instance``'s source value that no other row of its model has.

        Called by ``field.pre_save`` when the slug is empty, on insert and on update.

        :raises FieldError: ``source`` names no field of the model.
        """
        model: Any = type(instance)
        try:
            model._meta.get_field(self.source)
        except FieldDoesNotExist:
            raise FieldError(
                f"{model.__name__}.{field.name}: autoslug({self.source!r}) names no field of "
                f"{model.__name__}; fields are: {', '.join(f.name for f in model._meta.fields)}"
            ) from None
        base = slugify(str(getattr(instance, self.source) or "")) or model.__name__.lower()
        limit = field.max_length or 50
        candidate = base[:limit].rstrip("-")
        taken = model._base_manager.using(router.db_for_write(model, instance=instance))
        if instance.pk is not None:
            taken = taken.exclude(pk=instance.pk)
        n = 1
        while taken.filter(**{field.attname: candidate}).exists():
            n += 1
            suffix = f"-{n}"
            candidate = base[: limit - len(suffix)].rstrip("-") + suffix
        return candidate

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
    """Return a SlugField default that slugifies field ``source`` when the row is written.

    ``slug = dorm.SlugField(default=autoslug("name"))``: an empty slug is set from
    ``slugify(obj.name)`` by ``save()`` (insert or update), ``bulk_create`` and
    ``bulk_update``; when another row of the model already has it, ``-2``, ``-3``, ... is
    appended (cut to the field's max_length). A slug set by hand is kept, and checked when
    assigned. Objects of one ``bulk_create`` do not see each other's new slugs: add
    ``unique=True`` to have the database refuse duplicates (and concurrent saves).
    """
    return AutoSlug(source)
