"""The value-type registry and its hook, ``dorm_register_value_schemas``."""

from __future__ import annotations

from typing import Any

import pytest

import dorm
from dorm import plugins
from dorm.contrib.serializers import (
    SerializerError,
    UnknownFieldTypeError,
    iter_msgpack,
    json_schema_for,
    stream_msgpack,
)
from dorm.exceptions import PluginConflictError, PluginError, ValidationError
from dorm.plugins import hookimpl


class Kelvin(float):
    """A temperature that is never below absolute zero."""


class KelvinField(dorm.FloatField):
    def to_python(self, value: Any) -> Any:
        if value is None:
            return None
        value = Kelvin(value)
        if value < 0:
            raise ValidationError(f"{self.name}: {value} K is below absolute zero")
        return value


class ColdKelvinField(KelvinField):
    pass


class Opaque(dorm.Field):
    pass


class Probe(dorm.Model):
    reading = KelvinField()
    cold = ColdKelvinField(null=True)

    class Meta:
        app_label = "ser_registry"


class Sealed(dorm.Model):
    payload = Opaque()

    class Meta:
        app_label = "ser_registry"


def _describe_kelvin(field: Any) -> dict[str, Any]:
    return {"type": "number", "json_schema": {"minimum": 0, "description": "kelvin"}}


class KelvinPlugin:
    @hookimpl
    def dorm_register_value_schemas(self) -> list[tuple[type, Any]]:
        return [(KelvinField, _describe_kelvin)]


def test_hook_dorm_register_value_schemas() -> None:
    # Without the hook a KelvinField is a FloatField (its nearest core base).
    assert json_schema_for(Probe)["properties"]["reading"] == {"type": "number"}
    plugin = KelvinPlugin()
    plugins.register(plugin, name="kelvin")
    try:
        props = json_schema_for(Probe)["properties"]
        # A plugin entry wins over core's, and a subclass uses its nearest registered base.
        assert props["reading"] == {"type": "number", "minimum": 0, "description": "kelvin"}
        assert props["cold"]["type"] == ["number", "null"] and props["cold"]["minimum"] == 0
        # Plugin values travel through get_db_prep_value and come back through to_python.
        obj = Probe(reading=4.2, cold=None)
        (copy,) = iter_msgpack(b"".join(stream_msgpack([obj])), Probe)
        assert type(copy.reading) is Kelvin and copy.reading == 4.2
    finally:
        plugins.unregister(plugin)
    assert json_schema_for(Probe)["properties"]["reading"] == {"type": "number"}


def test_two_owners_of_one_field_class_conflict() -> None:
    class Other:
        @hookimpl
        def dorm_register_value_schemas(self) -> list[tuple[type, Any]]:
            return [(KelvinField, lambda f: {"type": "string"})]

    first, second = KelvinPlugin(), Other()
    plugins.register(first, name="kelvin")
    plugins.register(second, name="other")
    try:
        with pytest.raises(PluginConflictError, match=r"KelvinField is registered by both"):
            json_schema_for(Probe)
    finally:
        plugins.unregister(second)
        plugins.unregister(first)


@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        ([("not a class", str)], PluginError, r"must return \(field_class, describe\) pairs"),
        ([(Opaque, lambda f: {"type": "money"})], SerializerError, r"'type' must be one of"),
        ([(Opaque, lambda f: {"type": "decimal"})], SerializerError, r"without integer"),
    ],
)
def test_bad_answers_name_the_plugin(answer: Any, error: type, message: str) -> None:
    class Bad:
        @hookimpl
        def dorm_register_value_schemas(self) -> list[tuple[type, Any]]:
            return answer  # type: ignore[no-any-return]

    bad = Bad()
    plugins.register(bad, name="bad")
    try:
        with pytest.raises(error, match=message) as info:
            json_schema_for(Sealed)
        assert "'bad'" in str(info.value)
    finally:
        plugins.unregister(bad)


def test_a_failing_describer_is_reported_with_its_plugin() -> None:
    class Failing:
        @hookimpl
        def dorm_register_value_schemas(self) -> list[tuple[type, Any]]:
            raise RuntimeError("no table")

    failing = Failing()
    plugins.register(failing, name="failing")
    try:
        with pytest.raises(PluginError, match=r"'failing' failed in dorm_register_value_schemas"):
            json_schema_for(Probe)
    finally:
        plugins.unregister(failing)


def test_an_unknown_field_type_fails_before_any_row_is_read() -> None:
    with pytest.raises(UnknownFieldTypeError, match=r"Sealed\.payload: no serializer type"):
        next(stream_msgpack([Sealed(payload=b"x")]))


def test_dorm_fields_answers_the_hook_without_either_importing_the_other() -> None:
    pytest.importorskip("dorm.contrib.extra_fields")
    assert "dorm_register_value_schemas" in plugins.hooks_of("extra_fields")
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2] / "packages"
    fields_src = "".join(p.read_text() for p in (root / "dorm-fields").rglob("*.py"))
    ours = "".join(p.read_text() for p in (root / "dorm-serializers").rglob("*.py"))
    assert "contrib.serializers" not in fields_src and "extra_fields" not in ours
