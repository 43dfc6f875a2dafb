"""docs/fields.md runs as printed, and the whats-new snippets for the extra fields run."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "fields.md"
_FENCE = re.compile(r"^```(python)?\n(.*?)^```$", re.M | re.S)


def test_fields_md_runs_and_prints_what_it_shows(fresh_settings: Any) -> None:
    blocks = [(lang, code) for lang, code in _FENCE.findall(DOC.read_text())]
    namespace: dict[str, Any] = {"__name__": "docs_fields"}
    printed = io.StringIO()
    shown: list[str] = []
    for lang, code in blocks:
        if lang == "python":
            with contextlib.redirect_stdout(printed):
                exec(compile(code, str(DOC), "exec"), namespace)
        else:
            shown.append(code)
    assert printed.getvalue() in shown


SPEC_TIER_6 = """
import dorm
from dorm.contrib.extra_fields import (
    IPRangeField, TimezoneField, PathField,
    PercentageField, CountryField, autoslug,
)

class User(dorm.Model):
    # UUIDv7: time-ordered, PK-friendly.
    id = dorm.UUIDField(primary_key=True, version=7)
    email = dorm.EmailField(pii=True)
    network = IPRangeField(null=True)           # "10.0.0.0/24"
    tz = TimezoneField(default="UTC")
    avatar_path = PathField()
    completion = PercentageField()              # [0, 100]
    country = CountryField()                    # "ES", "US", ...
    slug = dorm.SlugField(default=autoslug("name"))
"""

SPEC_TIER_2 = """
from dorm.contrib.extra_fields import (
    MoneyField, SemverField, PhoneField, ColorField, JSONSchemaField
)
"""


def test_whats_new_snippets_run_as_written() -> None:
    exec(SPEC_TIER_2, {"__name__": "t_spec_tier_2"})
    namespace: dict[str, Any] = {"__name__": "t_spec_tier_6"}
    exec(SPEC_TIER_6, namespace)
    user = namespace["User"](email="a@b.c", network="10.0.0.0/24", country="ES")
    assert str(user.network) == "10.0.0.0/24" and user.tz.key == "UTC"
