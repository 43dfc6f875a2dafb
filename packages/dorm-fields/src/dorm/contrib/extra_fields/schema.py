"""``JSONSchemaField``: a JSONField whose documents must match a JSON Schema."""

from __future__ import annotations

import copy
import json
from typing import Any

from dorm.contrib.extra_fields.base import ConvertingAttribute
from dorm.exceptions import ValidationError
from dorm.models.data_fields import JSONField

__all__ = ["JSONSchemaField"]


def _jsonschema() -> Any:
    try:
        import jsonschema
    except ImportError as exc:
        raise ImportError(
            "JSONSchemaField needs the jsonschema package: pip install 'dorm-fields[jsonschema]'"
        ) from exc
    return jsonschema


class JSONSchemaField(JSONField):
    """A JSON document checked against ``schema`` when assigned and in ``full_clean``.

    Assignment includes the model constructor; documents loaded from the database are
    returned as stored, not checked again.

    The schema itself is checked against its declared draft (``$schema``, else the latest
    draft ``jsonschema`` knows) when the field is defined; a bad one raises ValueError.
    A failing document raises ValidationError naming the JSON path (``$.tags[1]``).
    Needs the ``jsonschema`` extra.
    """

    descriptor_class = ConvertingAttribute

    def __init__(self, *args: Any, schema: dict[str, Any] | bool, **kwargs: Any) -> None:
        jsonschema = _jsonschema()
        if not isinstance(schema, (dict, bool)):
            raise ValueError(
                f"JSONSchemaField: schema must be a JSON Schema dict, got {type(schema).__name__}"
            )
        try:
            json.dumps(schema)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"JSONSchemaField: schema is not JSON ({exc})") from None
        validator_class = jsonschema.validators.validator_for(schema)
        try:
            validator_class.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValueError(
                f"JSONSchemaField: invalid schema at {exc.json_path}: {exc.message}"
            ) from None
        self.schema = copy.deepcopy(schema)
        self._validator = validator_class(
            self.schema, format_checker=validator_class.FORMAT_CHECKER
        )
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> Any:
        if value is None:
            return None
        error = _jsonschema().exceptions.best_match(self._validator.iter_errors(value))
        if error is not None:
            where = f"{self.model.__name__}.{self.name}" if self.model is not None else self.name
            raise ValidationError(
                f"{where}: {self._display(value)} does not match the schema at "
                f"{error.json_path}: {error.message}",
                code="invalid",
            )
        return value

    def get_db_prep_value(self, value: Any) -> Any:
        return self.to_python(value)

    def from_db_value(self, value: Any) -> Any:
        # Stored documents are returned as they are: a schema made stricter later must
        # not make old rows unreadable (full_clean() reports them).
        return value

    def get_default(self) -> Any:
        return self.to_python(super().get_default())

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        kwargs["schema"] = copy.deepcopy(self.schema)
        return name, "dorm.contrib.extra_fields.JSONSchemaField", args, kwargs
