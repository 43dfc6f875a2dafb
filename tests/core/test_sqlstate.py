"""``DatabaseError.sqlstate``: the server's code, sync and async, kept when masked."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import dorm
from dorm.exceptions import IntegrityError


class Badge(dorm.Model):
    code = dorm.CharField(max_length=40, unique=True)
    owner_email = dorm.EmailField(pii=True, unique=True)

    class Meta:
        app_label = "sqlstate_tests"


MODELS = [Badge]

pytestmark = pytest.mark.usefixtures("clean_tables")


def test_a_unique_violation_carries_its_sqlstate(db: Any) -> None:
    Badge.objects.create(code="a", owner_email="ann@example.com")
    with pytest.raises(IntegrityError) as raised:
        Badge.objects.create(code="a", owner_email="bob@example.com")
    # SQLite reports no SQLSTATE; PostgreSQL reports unique_violation.
    assert raised.value.sqlstate == ("23505" if db.vendor == "postgresql" else None)


def test_the_sqlstate_survives_masking(db: Any) -> None:
    """The driver's message quotes the sensitive e-mail: dorm does not chain it, and
    the code must still be there."""
    Badge.objects.create(code="x", owner_email="secret@example.com")
    with pytest.raises(IntegrityError) as raised:
        Badge.objects.create(code="y", owner_email="secret@example.com")
    assert "secret@example.com" not in str(raised.value)
    if db.vendor == "postgresql":
        assert raised.value.__cause__ is None
        assert raised.value.sqlstate == "23505"


def test_the_async_api_carries_it_too(db: Any) -> None:
    Badge.objects.create(code="b", owner_email="cy@example.com")

    async def duplicate() -> str | None:
        try:
            await Badge.objects.acreate(code="b", owner_email="dee@example.com")
        except IntegrityError as exc:
            return exc.sqlstate
        raise AssertionError("no IntegrityError")

    assert asyncio.run(duplicate()) == ("23505" if db.vendor == "postgresql" else None)
