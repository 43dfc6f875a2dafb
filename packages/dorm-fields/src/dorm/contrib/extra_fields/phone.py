"""``PhoneField``: telephone numbers checked against real numbering plans, stored as E.164."""

from __future__ import annotations

import re
from typing import Any

from dorm.contrib.extra_fields.base import ExtraField

__all__ = ["PhoneField"]

# Spaces and the punctuation people write in numbers; anything else is an error.
_DECORATION = re.compile(r"[\s().\-/]")
_REGION = re.compile(r"[A-Z]{2}")


class PhoneField(ExtraField):
    """A phone number normalised to E.164 (``+34612345678``).

    Numbers are checked with ``phonenumbers`` (Google's libphonenumber metadata), so a
    number must exist in its country's numbering plan, not only look like one. Input
    needs a leading ``+`` and country code, unless ``region="ES"`` (an ISO 3166-1
    alpha-2 code) says which country national numbers belong to.
    """

    internal_type = "PhoneField"
    empty_default = ""

    def __init__(self, *args: Any, region: str | None = None, **kwargs: Any) -> None:
        import phonenumbers  # imported on first use: its metadata takes ~30 ms to load

        if region is not None and (
            not isinstance(region, str)
            or not _REGION.fullmatch(region)
            or region not in phonenumbers.SUPPORTED_REGIONS
        ):
            raise ValueError(
                f"PhoneField: region must be an ISO 3166-1 alpha-2 code with a numbering "
                f"plan such as 'ES' or 'US', got {region!r}"
            )
        self.region = region
        kwargs.setdefault("max_length", 16)  # '+' and at most 15 digits (ITU-T E.164)
        super().__init__(*args, **kwargs)

    def convert(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self.error(value, "a phone number string")
        compact = _DECORATION.sub("", value)
        if compact.startswith("00"):  # the international prefix written out
            compact = "+" + compact[2:]
        body = compact[1:] if compact.startswith("+") else compact
        if not body.isascii() or not body.isdigit():
            raise self.error(value, "a phone number (digits, spaces and punctuation only)")
        if not compact.startswith("+") and self.region is None:
            raise self.error(value, "an international phone number starting with '+'")
        import phonenumbers

        try:
            number = phonenumbers.parse(compact, self.region)
        except phonenumbers.NumberParseException:
            raise self.error(value, "a phone number") from None
        if not phonenumbers.is_valid_number(number):
            raise self.error(value, "a phone number of a real numbering plan")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def from_db_value(self, value: Any) -> Any:
        # Stored numbers are E.164 text already: no numbering-plan lookup per loaded row.
        return value

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("max_length") == 16:
            del kwargs["max_length"]
        if self.region is not None:
            kwargs["region"] = self.region
        return name, path, args, kwargs
