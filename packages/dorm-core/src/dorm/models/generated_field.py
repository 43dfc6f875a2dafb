"""``GeneratedField``: a column the database computes from the row (Django 5.0)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dorm.exceptions import FieldError
from dorm.models.fields import DATABASE_DEFAULT, Field

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper

__all__ = ["GeneratedField"]


class GeneratedField(Field):
    """``GENERATED ALWAYS AS (expression) STORED`` (``db_persist=True``) or ``VIRTUAL``.

    ``expression`` is built from the row's own fields (``F("price") * F("quantity")``,
    ``Lower("name")``); ``output_field`` gives the column type and conversions. dorm never
    writes the column: INSERTs leave it out and read it back with RETURNING, and an UPDATE
    by ``save()`` forgets the value so that the next access reloads it. PostgreSQL (before
    18) has only stored generated columns: ``db_persist=False`` raises NotSupportedError
    there when the table is created; SQLite has both.
    """

    internal_type = "GeneratedField"
    generated = True

    def __init__(
        self, *, expression: Any, output_field: Field, db_persist: bool, **kwargs: Any
    ) -> None:
        if not hasattr(expression, "resolve_expression"):
            raise TypeError(
                f"GeneratedField: expression must be an expression (F(...), a function, "
                f"...), got {expression!r}"
            )
        if not isinstance(output_field, Field) or output_field.model is not None:
            raise TypeError(
                f"GeneratedField: output_field must be an unbound field instance "
                f"(dorm.IntegerField()), got {output_field!r}"
            )
        if not isinstance(db_persist, bool):
            raise TypeError(f"GeneratedField: db_persist must be True or False, got {db_persist!r}")
        for option in ("default", "db_default", "primary_key"):
            if option in kwargs:
                raise TypeError(f"GeneratedField takes no {option}=: the database computes it")
        kwargs.setdefault("editable", False)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("null", True)
        super().__init__(**kwargs)
        self.expression = expression
        self.output_field = output_field
        self.db_persist = db_persist

    def has_db_default(self) -> bool:
        # Inserts treat it as a column the database fills (see Options.db_default_fields).
        return True

    def get_default(self) -> Any:
        return DATABASE_DEFAULT

    def db_type(self, connection: BaseDatabaseWrapper) -> str:
        return self.output_field.db_type(connection)

    def to_python(self, value: Any) -> Any:
        return self.output_field.to_python(value)

    def from_db_value(self, value: Any) -> Any:
        return self.output_field.from_db_value(value)

    def get_db_prep_value(self, value: Any) -> Any:
        return self.output_field.get_db_prep_value(value)

    def get_internal_type(self) -> str:
        return self.output_field.get_internal_type()

    def get_lookup(self, name: str) -> type | None:
        return self.output_field.get_lookup(name)

    def get_transform(self, name: str) -> type | None:
        return self.output_field.get_transform(name)

    def validate(self, value: Any, model_instance: Any) -> None:
        return None

    def pre_save(self, instance: Any, add: bool) -> Any:
        raise FieldError(
            f"{type(instance).__name__}.{self.name} is a GeneratedField: the database "
            f"computes it, nothing may write it"
        )

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        for key, default in (("editable", False), ("blank", True), ("null", True)):
            if kwargs.get(key, not default) == default:
                kwargs.pop(key, None)
            elif getattr(self, key) != default:
                kwargs[key] = getattr(self, key)
        kwargs.pop("db_default", None)
        kwargs["expression"] = self.expression
        kwargs["output_field"] = self.output_field
        kwargs["db_persist"] = self.db_persist
        return name, path, args, kwargs
