"""Mask personal data in place: pseudonyms that stay unique and joinable, in batches.

Usage::

    from dorm.contrib.anonymizer import anonymize_model

    changed = anonymize_model(
        User,
        {
            "email": "random_email",          # anon.<hash>@example.invalid, unique-safe
            "phone": "random_phone",          # +999 and 12 digits
            "notes": "redact",                # [REDACTED]
            "nickname": "null",
            "credit_card": lambda v: "•••• •••• •••• ••••",
        },
        batch_size=1000,
        seed="keep-it-secret",                # same input -> same pseudonym, every table
    )

From the shell: ``dorm anonymize app.User --set email=random_email --seed S [--dry-run]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dorm.plugins import lazy_exports

if TYPE_CHECKING:
    from dorm.contrib.anonymizer.engine import (
        Plan,
        anonymize_model,
        plan_anonymization,
    )
    from dorm.contrib.anonymizer.exceptions import (
        AnonymizationError,
    )
    from dorm.contrib.anonymizer.strategies import (
        REDACTED,
    )

# Loaded on first use: the plugin's entry point imports this package, and a plugin must
# add nothing to the cost of ``import dorm`` (or of defining a model) until it is used.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Plan": "dorm.contrib.anonymizer.engine",
        "anonymize_model": "dorm.contrib.anonymizer.engine",
        "plan_anonymization": "dorm.contrib.anonymizer.engine",
        "AnonymizationError": "dorm.contrib.anonymizer.exceptions",
        "REDACTED": "dorm.contrib.anonymizer.strategies",
    },
)


__version__ = "1.0.0"

__all__ = [
    "REDACTED",
    "AnonymizationError",
    "Plan",
    "__version__",
    "anonymize_model",
    "plan_anonymization",
]
