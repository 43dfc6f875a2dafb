"""Extra field types for dorm: money, SemVer, phone, colour, JSON Schema, CIDR and more.

Usage::

    import dorm
    from dorm.contrib.extra_fields import ColorField, Money, MoneyField, autoslug

    class Product(dorm.Model):
        name = dorm.CharField(max_length=80)
        slug = dorm.SlugField(default=autoslug("name"), unique=True)
        price = MoneyField(currency="EUR")
        color = ColorField(default="#000000")

    item = Product(name="Blue mug", price=Money("9.90", "EUR"))
    item.color = "#1e90ff"          # stored as "#1E90FF"
    item.color = "blue"             # raises dorm.exceptions.ValidationError at once
    item.save()                     # slug "blue-mug" ("blue-mug-2" if taken)

``JSONSchemaField`` needs the ``jsonschema`` extra: ``pip install 'dorm-fields[jsonschema]'``.
"""

from __future__ import annotations

from dorm.contrib.extra_fields.color import ColorField
from dorm.contrib.extra_fields.country import Country, CountryField
from dorm.contrib.extra_fields.exceptions import CurrencyMismatchError
from dorm.contrib.extra_fields.money import Money, MoneyField
from dorm.contrib.extra_fields.network import IPRangeField
from dorm.contrib.extra_fields.paths import PathField
from dorm.contrib.extra_fields.percentage import PercentageField
from dorm.contrib.extra_fields.phone import PhoneField
from dorm.contrib.extra_fields.schema import JSONSchemaField
from dorm.contrib.extra_fields.semver import SemVer, SemverField
from dorm.contrib.extra_fields.slug import autoslug, slugify
from dorm.contrib.extra_fields.timezone import TimezoneField

__version__ = "1.0.0"

__all__ = [
    "ColorField",
    "Country",
    "CountryField",
    "CurrencyMismatchError",
    "IPRangeField",
    "JSONSchemaField",
    "Money",
    "MoneyField",
    "PathField",
    "PercentageField",
    "PhoneField",
    "SemVer",
    "SemverField",
    "TimezoneField",
    "__version__",
    "autoslug",
    "slugify",
]
