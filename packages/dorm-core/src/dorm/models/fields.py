"""Scalar model fields: the Django set, with per-vendor column types and conversions."""

from __future__ import annotations

import datetime
import decimal
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from dorm import plugins
from dorm.db.utils import MASK, is_sensitive_name, patterns_version
from dorm.exceptions import NotSupportedError, ValidationError

if TYPE_CHECKING:
    from dorm.db.backends.base import BaseDatabaseWrapper
    from dorm.models.base import Model

__all__ = [
    "NOT_PROVIDED",
    "AutoField",
    "BigAutoField",
    "BigIntegerField",
    "BinaryField",
    "BooleanField",
    "CharField",
    "DateField",
    "DatabaseDefault",
    "DateTimeField",
    "DecimalField",
    "DurationField",
    "EmailField",
    "Field",
    "FloatField",
    "GenericIPAddressField",
    "IntegerField",
    "JSONField",
    "PositiveBigIntegerField",
    "PositiveIntegerField",
    "PositiveSmallIntegerField",
    "SlugField",
    "SmallIntegerField",
    "TextField",
    "TimeField",
    "URLField",
    "UUIDField",
    "ValidatedAttribute",
    "uuid7",
]

UTC = datetime.UTC


_CORE_FIELD_MODULES = frozenset(
    {
        "dorm.models.fields",
        "dorm.models.temporal_fields",
        "dorm.models.data_fields",
        "dorm.models.related",
        "dorm.models.many_to_many",
        "dorm.models.file_path_field",
        "dorm.models.generated_field",
    }
)


class _NotProvided:
    def __repr__(self) -> str:
        return "NOT_PROVIDED"

    # A singleton compared with ``is``: copies (abstract parents' fields are deep-copied into
    # each child) must stay the same object, or the copy looks like an explicit default.
    def __copy__(self) -> _NotProvided:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _NotProvided:
        return self

    def __reduce__(self) -> str:
        return "NOT_PROVIDED"


NOT_PROVIDED: Any = _NotProvided()


class DatabaseDefault:
    """The value of a field with ``db_default`` that was not given: the INSERT leaves the
    column out, the database fills it, and RETURNING reads the value back (Django 5.0)."""

    _instance: ClassVar[DatabaseDefault | None] = None

    def __new__(cls) -> DatabaseDefault:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DatabaseDefault()"

    def __copy__(self) -> DatabaseDefault:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> DatabaseDefault:
        return self


DATABASE_DEFAULT = DatabaseDefault()


class DeferredAttribute:
    """Class attribute for a field: reads a value missing from the instance from the DB.

    A non-data descriptor, so a loaded value in ``instance.__dict__`` wins and costs
    nothing; only fields left out by ``only()`` / ``defer()`` reach ``__get__``.
    """

    def __init__(self, field: Field) -> None:
        self.field = field

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        attname = self.field.attname
        if attname not in instance.__dict__:
            instance.refresh_from_db(fields=[attname])
        return instance.__dict__[attname]


class ValidatedAttribute(DeferredAttribute):
    """Class attribute that converts on assignment: ``obj.x = v`` runs ``field.to_python(v)``.

    A data descriptor, so reads go through ``__get__`` too: a field opts in by setting
    ``descriptor_class = ValidatedAttribute`` (core's own fields keep the cheaper
    ``DeferredAttribute``). An invalid value raises the field's ValidationError at the
    assignment, before anything is stored. Rows loaded from the database are stored as
    the field's ``from_db_value`` returns them, never through ``__set__``. Arguments to
    the model constructor are stored as given (``full_clean()`` and ``save()`` convert
    them) unless ``converts_on_init`` is True: then the constructor assigns them through
    ``__set__``, as Django's ``Model.__init__`` does with ``setattr``.
    """

    #: True: ``Model(x=v)`` and ``Model(v)`` assign through ``__set__`` as ``obj.x = v`` does.
    converts_on_init: ClassVar[bool] = False

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.field.attname] = self.field.to_python(value)


class Field:
    """Base class of every model field; plugins subclass it for new column types.

    The conversion chain is ``to_python`` (any input -> the Python type, raising
    ValidationError), ``get_db_prep_value`` (Python type -> value handed to the backend),
    and on the way back the backend's converter then ``from_db_value``.
    """

    internal_type: ClassVar[str] = "Field"
    empty_values: ClassVar[tuple[Any, ...]] = (None, "", [], (), {})
    #: The default of a NOT NULL field declared without one ("" for text, as in Django).
    empty_default: ClassVar[Any] = None
    #: True for fields that hold a relation (ForeignKey, ManyToManyField, ...).
    is_relation: ClassVar[bool] = False
    #: True for a column the database computes (GeneratedField): never written.
    generated: ClassVar[bool] = False
    many_to_many: ClassVar[bool] = False
    #: The class attribute each model gets for this field (see ``ValidatedAttribute``).
    descriptor_class: ClassVar[type[DeferredAttribute]] = DeferredAttribute
    _creation_counter: ClassVar[int] = 0
    _counter_lock = threading.Lock()

    def __init__(
        self,
        verbose_name: str | None = None,
        name: str | None = None,
        *,
        primary_key: bool = False,
        max_length: int | None = None,
        unique: bool = False,
        blank: bool = False,
        null: bool = False,
        db_index: bool = False,
        default: Any = NOT_PROVIDED,
        editable: bool = True,
        choices: Iterable[Any] | None = None,
        help_text: str = "",
        db_column: str | None = None,
        validators: Sequence[Callable[[Any], None]] = (),
        pii: bool = False,
        db_comment: str | None = None,
        db_default: Any = NOT_PROVIDED,
    ) -> None:
        self.verbose_name = verbose_name
        self.name = name or ""
        self.primary_key = primary_key
        self.max_length = max_length
        self._unique = unique
        self.blank = blank
        self.null = null
        self.db_index = db_index
        self.default = default
        self.editable = editable
        self.choices = list(choices) if choices is not None else None
        self.help_text = help_text
        self.db_column = db_column
        self._validators = list(validators)
        self.pii = pii
        if db_comment is not None and not isinstance(db_comment, str):
            raise TypeError(
                f"{type(self).__name__}: db_comment must be a string, got {db_comment!r}"
            )
        self.db_comment = db_comment
        # A value or expression the database fills in when an INSERT leaves the column out
        # (Django 5.0's db_default): the column's DEFAULT clause.
        self.db_default = db_default
        # The model class once contribute_to_class ran (Any: set late, read everywhere).
        self.model: Any = None
        self.attname = ""
        self.column = ""
        self.concrete = True
        self.auto_created = False
        self.remote_field: Any = None
        with Field._counter_lock:
            Field._creation_counter += 1
            self.creation_counter = Field._creation_counter
        if primary_key:
            self.null = False
        if max_length is not None and (not isinstance(max_length, int) or max_length <= 0):
            raise ValueError(f"{type(self).__name__}: max_length must be a positive integer")
        self._sensitive_cache: tuple[int, bool] | None = None

    # -- identity ------------------------------------------------------------------------------

    def __repr__(self) -> str:
        path = f"{type(self).__module__}.{type(self).__qualname__}"
        if self.model is not None:
            return f"<{path}: {self.model._meta.label}.{self.name}>"
        return f"<{path}: {self.name or '?'}>"

    def __lt__(self, other: Field) -> bool:
        return self.creation_counter < other.creation_counter

    @property
    def unique(self) -> bool:
        return self._unique or self.primary_key

    @property
    def validators(self) -> list[Callable[[Any], None]]:
        return [*self._default_validators(), *self._validators]

    def _default_validators(self) -> list[Callable[[Any], None]]:
        return []

    def get_internal_type(self) -> str:
        return self.internal_type

    # -- class wiring --------------------------------------------------------------------------

    def set_attributes_from_name(self, name: str) -> None:
        self.name = self.name or name
        self.attname = self.get_attname()
        self.column = self.db_column or self.attname
        if self.verbose_name is None:
            self.verbose_name = self.name.replace("_", " ")

    def get_attname(self) -> str:
        return self.name

    def contribute_to_class(self, cls: type[Model], name: str) -> None:
        self.set_attributes_from_name(name)
        self.model = cls
        cls._meta.add_field(self)
        if self.column:
            setattr(cls, self.attname, self.descriptor_class(self))
        if self.choices is not None:
            field = self

            def get_display(instance: Any) -> Any:
                value = getattr(instance, field.attname)
                return dict(field.flat_choices()).get(value, value)

            setattr(cls, f"get_{self.name}_display", get_display)

    def flat_choices(self) -> list[tuple[Any, Any]]:
        flat: list[tuple[Any, Any]] = []
        for choice in self.choices or []:
            value, label = choice
            if isinstance(label, (list, tuple)):  # an option group
                flat.extend(label)
            else:
                flat.append((value, label))
        return flat

    # -- defaults --------------------------------------------------------------------------------

    def has_default(self) -> bool:
        return self.default is not NOT_PROVIDED

    def has_db_default(self) -> bool:
        return self.db_default is not NOT_PROVIDED

    def get_default(self) -> Any:
        if self.has_default():
            return self.default() if callable(self.default) else self.default
        if self.has_db_default():
            return DATABASE_DEFAULT
        if self.null:
            return None
        return self.empty_default

    def pre_save(self, instance: Model, add: bool) -> Any:
        """Return the value to save (auto_now fields set it here)."""
        values = instance.__dict__
        if self.attname not in values:
            # Deferred by only()/defer(): load it rather than overwrite the column with NULL.
            return getattr(instance, self.attname)
        return values[self.attname]

    # -- conversion ------------------------------------------------------------------------------

    def to_python(self, value: Any) -> Any:
        return value

    def get_prep_value(self, value: Any) -> Any:
        return value

    def get_db_prep_value(self, value: Any) -> Any:
        """Return ``value`` ready for the backend (called for every bound value)."""
        return self.get_prep_value(value)

    #: Exact value types that ``to_python()`` and ``get_db_prep_value()`` return unchanged,
    #: as the class that sets this attribute converts them (see ``_identity_types``).
    _prep_identity: ClassVar[tuple[type, ...]] = ()

    def _identity_types(self) -> tuple[type, ...]:
        """The exact types whose values need no ``get_db_prep_value()`` call (compiled
        parameter builders skip it for them): those the declaring class lists, unless a
        subclass changed the conversion methods."""
        cls = type(self)
        owner = next(k for k in cls.__mro__ if "_prep_identity" in k.__dict__)
        if (
            cls.get_db_prep_value is Field.get_db_prep_value
            and cls.get_prep_value is owner.get_prep_value  # type: ignore[attr-defined]
            and cls.to_python is owner.to_python  # type: ignore[attr-defined]
        ):
            return owner._prep_identity  # type: ignore[attr-defined,no-any-return]
        return ()

    def from_db_value(self, value: Any) -> Any:
        """Return the Python value for what the backend's converter produced."""
        return value

    def value_from_object(self, obj: Model) -> Any:
        return getattr(obj, self.attname)

    def db_parameters(self) -> dict[str, Any]:
        return {"max_length": self.max_length}

    def db_type(self, connection: BaseDatabaseWrapper) -> str:
        """Return the column type on ``connection``'s vendor.

        A type registered through ``dorm_register_field_types`` wins; else the backend's
        mapping for ``internal_type``.

        :raises NotSupportedError: neither knows this field on that vendor.
        """
        registered = plugins.extensions().field_type(type(self), connection.vendor)
        if registered is not None:
            return registered if isinstance(registered, str) else registered(self, connection)
        found = connection.db_type_for(self.get_internal_type(), self.db_parameters())
        if found is None:
            raise NotSupportedError(
                f"{type(self).__name__} has no column type on {connection.vendor}; a plugin "
                f"can add one through dorm_register_field_types"
            )
        return found

    def rel_db_type(self, connection: BaseDatabaseWrapper) -> str:
        """The column type of a foreign key pointing at this field."""
        return self.db_type(connection)

    def db_check(self, connection: BaseDatabaseWrapper) -> str | None:
        """An extra CHECK on the column (``"{column}" >= 0``), or None."""
        return None

    @property
    def sensitive(self) -> bool:
        """True when bound values of this column must be masked in logs and errors."""
        if self.pii:
            return True
        version = patterns_version()
        cache = self._sensitive_cache
        if cache is None or cache[0] != version:
            found = is_sensitive_name(self.column or self.name)
            self._sensitive_cache = cache = (version, found)
        return cache[1]

    # -- validation -----------------------------------------------------------------------------

    def run_validators(self, value: Any) -> None:
        if value in self.empty_values:
            return
        errors: list[str] = []
        for validator in self.validators:
            try:
                validator(value)
            except ValidationError as exc:
                errors.extend(exc.messages)
        if errors:
            raise ValidationError(errors)

    def validate(self, value: Any, model_instance: Model | None) -> None:
        """Check choices, null and blank; raise ValidationError naming the field."""
        if self.choices is not None and value not in self.empty_values:
            allowed = [v for v, _label in self.flat_choices()]
            if value not in allowed:
                raise ValidationError(
                    f"{self.name}: value {self._display(value)} is not a valid choice; "
                    f"choose from {allowed!r}"
                )
        if value is None and not self.null:
            raise ValidationError(f"{self.name}: this field cannot be null")
        if not self.blank and value in self.empty_values:
            raise ValidationError(f"{self.name}: this field cannot be blank")

    def clean(self, value: Any, model_instance: Model | None) -> Any:
        value = self.to_python(value)
        self.validate(value, model_instance)
        self.run_validators(value)
        return value

    def _invalid(self, value: Any, expected: str) -> ValidationError:
        where = f"{self.model.__name__}.{self.name}" if self.model is not None else self.name
        return ValidationError(f"{where}: {self._display(value)} is not {expected}")

    def _display(self, value: Any, show: Callable[[Any], str] = repr) -> str:
        """``show(value)`` for an error message, or ``'***'`` when the column is sensitive."""
        return repr(MASK) if self.sensitive else show(value)

    # -- migrations ------------------------------------------------------------------------------

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        """Return ``(name, import path, args, kwargs)`` that rebuild this field."""
        kwargs: dict[str, Any] = {}
        defaults = {
            "primary_key": False,
            "max_length": None,
            "unique": False,
            "blank": False,
            "null": False,
            "db_index": False,
            "editable": True,
            "choices": None,
            "help_text": "",
            "db_column": None,
            "pii": False,
            "db_comment": None,
        }
        for key, default in defaults.items():
            value = self._unique if key == "unique" else getattr(self, key)
            if value != default:
                kwargs[key] = value
        if self.has_default():
            kwargs["default"] = self.default
        if self.has_db_default():
            kwargs["db_default"] = self.db_default
        if self._validators:
            kwargs["validators"] = list(self._validators)
        module = type(self).__module__
        if module in _CORE_FIELD_MODULES:
            module = "dorm"
        return self.name, f"{module}.{type(self).__qualname__}", [], kwargs

    def clone(self) -> Field:
        name, path, args, kwargs = self.deconstruct()
        return type(self)(*args, **kwargs)

    # -- queries ---------------------------------------------------------------------------------

    def get_lookup(self, name: str) -> type | None:
        return plugins.extensions().lookup(type(self), name)

    def get_transform(self, name: str) -> type | None:
        return plugins.extensions().transform(type(self), name)

    def get_col(self, alias: str) -> Any:
        from dorm.expressions import Col

        return Col(alias, self)


# -- numbers ---------------------------------------------------------------------------------------


class IntegerField(Field):
    internal_type = "IntegerField"
    _range: ClassVar[tuple[int, int]] = (-(2**31), 2**31 - 1)
    _prep_identity = (int,)

    def to_python(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise self._invalid(value, "an integer") from None

    def get_prep_value(self, value: Any) -> Any:
        return self.to_python(value)

    def _default_validators(self) -> list[Callable[[Any], None]]:
        low, high = self._range
        field = self

        def in_range(value: Any) -> None:
            if not low <= value <= high:
                raise ValidationError(
                    f"{field.name}: {field._display(value, str)} is out of range [{low}, {high}]"
                )

        return [in_range]

    def out_of_range(self, value: Any) -> ValidationError:
        """The error for writing ``value`` (outside ``_range``) to this field's column."""
        low, high = self._range
        where = f"{self.model.__name__}.{self.name}" if self.model is not None else self.name
        return ValidationError(
            f"{where}: {self._display(value, str)} is out of range for its "
            f"{self.internal_type} column [{low}, {high}]",
            code="out_of_range",
        )


class SmallIntegerField(IntegerField):
    internal_type = "SmallIntegerField"
    _range = (-(2**15), 2**15 - 1)


class BigIntegerField(IntegerField):
    internal_type = "BigIntegerField"
    _range = (-(2**63), 2**63 - 1)


class PositiveIntegerField(IntegerField):
    internal_type = "PositiveIntegerField"
    _range = (0, 2**31 - 1)

    def db_check(self, connection: BaseDatabaseWrapper) -> str | None:
        return f"{connection.ops.quote_name(self.column)} >= 0"


class PositiveBigIntegerField(PositiveIntegerField):
    """A non-negative 64-bit integer: ``bigint`` with ``CHECK (column >= 0)``, as Django."""

    internal_type = "PositiveBigIntegerField"
    _range = (0, 2**63 - 1)


class PositiveSmallIntegerField(PositiveIntegerField):
    """A non-negative 16-bit integer: ``smallint`` with ``CHECK (column >= 0)``, as Django."""

    internal_type = "PositiveSmallIntegerField"
    _range = (0, 2**15 - 1)


class AutoField(IntegerField):
    """An integer primary key the database assigns."""

    internal_type = "AutoField"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["primary_key"] = True
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def validate(self, value: Any, model_instance: Model | None) -> None:
        pass

    def rel_db_type(self, connection: BaseDatabaseWrapper) -> str:
        return IntegerField().db_type(connection)


class BigAutoField(AutoField):
    internal_type = "BigAutoField"
    _range = (-(2**63), 2**63 - 1)

    def rel_db_type(self, connection: BaseDatabaseWrapper) -> str:
        return BigIntegerField().db_type(connection)


class FloatField(Field):
    internal_type = "FloatField"

    def to_python(self, value: Any) -> Any:
        if value is None:
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise self._invalid(value, "a number") from None

    def get_prep_value(self, value: Any) -> Any:
        return self.to_python(value)


class DecimalField(Field):
    """Fixed-point numbers; always returns ``decimal.Decimal`` with ``decimal_places``."""

    internal_type = "DecimalField"

    def __init__(
        self,
        verbose_name: str | None = None,
        name: str | None = None,
        max_digits: int | None = None,
        decimal_places: int | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(max_digits, int) or max_digits <= 0:
            raise ValueError(
                f"DecimalField: max_digits must be a positive integer, got {max_digits!r}"
            )
        if not isinstance(decimal_places, int) or decimal_places < 0:
            raise ValueError(
                "DecimalField: decimal_places must be a non-negative integer, "
                f"got {decimal_places!r}"
            )
        if decimal_places > max_digits:
            raise ValueError(
                f"DecimalField: decimal_places ({decimal_places}) exceeds max_digits ({max_digits})"
            )
        self.max_digits = max_digits
        self.decimal_places = decimal_places
        self._quantum = decimal.Decimal(1).scaleb(-decimal_places)
        # The default context keeps 28 digits: too few to quantize numeric(30, 10) values.
        self._context = decimal.Context(prec=max(max_digits, 28))
        super().__init__(verbose_name, name, **kwargs)

    def db_parameters(self) -> dict[str, Any]:
        return {"max_digits": self.max_digits, "decimal_places": self.decimal_places}

    def to_python(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, float):
            value = repr(value)
        try:
            result = decimal.Decimal(value)
        except (decimal.InvalidOperation, TypeError, ValueError):
            raise self._invalid(value, "a decimal number") from None
        if not result.is_finite():
            raise self._invalid(value, "a finite decimal number")
        return result

    def get_prep_value(self, value: Any) -> Any:
        return self.to_python(value)

    def quantize(self, value: decimal.Decimal) -> decimal.Decimal:
        try:
            return value.quantize(self._quantum, context=self._context)
        except decimal.InvalidOperation:  # more digits than declared (SQLite stores anything)
            return value

    def _default_validators(self) -> list[Callable[[Any], None]]:
        field = self

        def digits(value: decimal.Decimal) -> None:
            try:
                quantized = value.quantize(field._quantum, context=field._context)
            except decimal.InvalidOperation:
                raise ValidationError(
                    f"{field.name}: {field._display(value, str)} has more than "
                    f"{field.max_digits} digits"
                ) from None
            if quantized != value:
                raise ValidationError(
                    f"{field.name}: {field._display(value, str)} has more than "
                    f"{field.decimal_places} decimal places"
                )
            whole = len(quantized.as_tuple().digits) - field.decimal_places
            if whole > field.max_digits - field.decimal_places:
                raise ValidationError(
                    f"{field.name}: {field._display(value, str)} has more than "
                    f"{field.max_digits} digits"
                )

        return [digits]

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        kwargs["max_digits"] = self.max_digits
        kwargs["decimal_places"] = self.decimal_places
        return name, path, args, kwargs


class BooleanField(Field):
    internal_type = "BooleanField"
    _true = frozenset({"t", "true", "1", "yes", "on"})
    _false = frozenset({"f", "false", "0", "no", "off"})

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in self._true:
                return True
            if lowered in self._false:
                return False
        raise self._invalid(value, "a boolean")

    def get_prep_value(self, value: Any) -> Any:
        return self.to_python(value)

    def validate(self, value: Any, model_instance: Model | None) -> None:
        if value is None and not self.null:
            raise ValidationError(f"{self.name}: this field cannot be null")


# -- text ------------------------------------------------------------------------------------------


class CharField(Field):
    internal_type = "CharField"
    empty_default = ""
    _prep_identity = (str,)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.max_length is None:
            raise ValueError(
                f"{type(self).__name__} requires max_length (use TextField for unbounded text)"
            )

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        return str(value)

    def get_prep_value(self, value: Any) -> Any:
        return self.to_python(value)

    def _default_validators(self) -> list[Callable[[Any], None]]:
        field = self

        def max_length(value: str) -> None:
            if field.max_length is not None and len(value) > field.max_length:
                raise ValidationError(
                    f"{field.name}: {len(value)} characters is longer than max_length "
                    f"{field.max_length}"
                )

        return [max_length]


class TextField(Field):
    internal_type = "TextField"
    empty_default = ""
    _prep_identity = (str,)

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        return str(value)

    def get_prep_value(self, value: Any) -> Any:
        return self.to_python(value)


def _regex_validator(field: Field, pattern: re.Pattern[str], what: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ValidationError(f"{field.name}: {field._display(value)} is not {what}")

    return check


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+|[^@\s]+@localhost")
_URL = re.compile(r"(https?|ftps?)://[^\s/$.?#][^\s]*", re.IGNORECASE)
_SLUG = re.compile(r"[-a-zA-Z0-9_]+")


class _PatternCharField(CharField):
    """A CharField whose values must match ``pattern`` (described to users as ``what``)."""

    internal_type = "CharField"
    default_max_length: ClassVar[int] = 255
    pattern: ClassVar[re.Pattern[str]]
    what: ClassVar[str] = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", self.default_max_length)
        super().__init__(*args, **kwargs)

    def _default_validators(self) -> list[Callable[[Any], None]]:
        return [*super()._default_validators(), _regex_validator(self, self.pattern, self.what)]


class EmailField(_PatternCharField):
    default_max_length = 254
    pattern = _EMAIL
    what = "an email address"


class URLField(_PatternCharField):
    default_max_length = 200
    pattern = _URL
    what = "a URL"


class SlugField(_PatternCharField):
    """Letters, digits, ``-`` and ``_``; indexed unless ``db_index=False``.

    The default may be a save-time default (dorm-fields' ``autoslug("name")``): an object
    with a ``pre_save(field, instance, add)`` method. Whenever the slug is empty as the row
    is written (``save()``, ``bulk_create``, ``bulk_update``), this field's ``pre_save``
    asks it for the value and stores that on the instance. Such a default may also name a
    ``descriptor_class``, which then becomes the model's class attribute for the field.
    """

    default_max_length = 50
    pattern = _SLUG
    what = "a slug (letters, digits, '-' and '_')"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("db_index", True)
        super().__init__(*args, **kwargs)

    def contribute_to_class(self, cls: type[Model], name: str) -> None:
        super().contribute_to_class(cls, name)
        descriptor = getattr(self.default, "descriptor_class", None)
        if descriptor is not None and self.column:
            setattr(cls, self.attname, descriptor(self))

    def pre_save(self, instance: Model, add: bool) -> Any:
        # Runs for every written row of every SlugField: kept to one dict lookup and a
        # comparison while the slug is set.
        value = instance.__dict__.get(self.attname, NOT_PROVIDED)
        if value is NOT_PROVIDED:
            value = super().pre_save(instance, add)  # deferred by only()/defer(): loaded
        if value == "" or value is None:
            fill = getattr(self.default, "pre_save", None)
            if fill is not None:
                value = fill(self, instance, add)
                instance.__dict__[self.attname] = value
        return value


# Re-exported so that ``dorm.models.fields`` names every core field class.
from dorm.models.data_fields import (  # noqa: E402
    BinaryField,
    GenericIPAddressField,
    JSONField,
    UUIDField,
    uuid7,
)
from dorm.models.temporal_fields import (  # noqa: E402
    DateField,
    DateTimeField,
    DurationField,
    TimeField,
)
