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

from typing import TYPE_CHECKING

from dorm.plugins import lazy_exports

if TYPE_CHECKING:
    from dorm.contrib.extra_fields.color import (
        ColorField,
    )
    from dorm.contrib.extra_fields.country import (
        Country,
        CountryField,
    )
    from dorm.contrib.extra_fields.exceptions import (
        CurrencyMismatchError,
    )
    from dorm.contrib.extra_fields.money import (
        Money,
        MoneyField,
    )
    from dorm.contrib.extra_fields.network import (
        IPRangeField,
    )
    from dorm.contrib.extra_fields.paths import (
        PathField,
    )
    from dorm.contrib.extra_fields.percentage import (
        PercentageField,
    )
    from dorm.contrib.extra_fields.phone import (
        PhoneField,
    )
    from dorm.contrib.extra_fields.schema import (
        JSONSchemaField,
    )
    from dorm.contrib.extra_fields.semver import (
        SemVer,
        SemverField,
    )
    from dorm.contrib.extra_fields.slug import (
        autoslug,
        slugify,
    )
    from dorm.contrib.extra_fields.timezone import (
        TimezoneField,
    )

# Loaded on first use: the plugin's entry point imports this package, and a plugin must
# add nothing to the cost of ``import dorm`` (or of defining a model) until it is used.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ColorField": "dorm.contrib.extra_fields.color",
        "Country": "dorm.contrib.extra_fields.country",
        "CountryField": "dorm.contrib.extra_fields.country",
        "CurrencyMismatchError": "dorm.contrib.extra_fields.exceptions",
        "Money": "dorm.contrib.extra_fields.money",
        "MoneyField": "dorm.contrib.extra_fields.money",
        "IPRangeField": "dorm.contrib.extra_fields.network",
        "PathField": "dorm.contrib.extra_fields.paths",
        "PercentageField": "dorm.contrib.extra_fields.percentage",
        "PhoneField": "dorm.contrib.extra_fields.phone",
        "JSONSchemaField": "dorm.contrib.extra_fields.schema",
        "SemVer": "dorm.contrib.extra_fields.semver",
        "SemverField": "dorm.contrib.extra_fields.semver",
        "autoslug": "dorm.contrib.extra_fields.slug",
        "slugify": "dorm.contrib.extra_fields.slug",
        "TimezoneField": "dorm.contrib.extra_fields.timezone",
    },
)


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
