"""An integer outside its column's range raises ValidationError naming the field, on every
write path and both backends, before any row is written; a filter on one matches nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import dorm
from dorm.exceptions import ValidationError


class Counter(dorm.Model):
    n = dorm.IntegerField(default=0)
    small = dorm.SmallIntegerField(default=0)
    big = dorm.BigIntegerField(default=0)
    positive = dorm.PositiveIntegerField(default=0)

    class Meta:
        app_label = "t_int_range"


MODELS = [Counter]
pytestmark = pytest.mark.usefixtures("clean_tables")

INT_MAX = 2**31 - 1


def _existing() -> Any:
    return Counter.objects.create(n=1)


CASES: list[tuple[str, Callable[[], Any], str]] = [
    ("create", lambda: Counter.objects.create(n=INT_MAX + 1), "Counter.n: 2147483648"),
    ("save new", lambda: Counter(small=2**15).save(), "Counter.small: 32768"),
    (
        "bulk_create",
        lambda: Counter.objects.bulk_create([Counter(), Counter(n=-(2**31) - 1)]),
        "Counter.n: -2147483649",
    ),
    ("update", lambda: Counter.objects.update(big=2**63), "Counter.big: 9223372036854775808"),
    ("update str", lambda: Counter.objects.update(n="99999999999"), "Counter.n: 99999999999"),
    ("positive", lambda: Counter.objects.create(positive=-1), "Counter.positive: -1"),
    (
        "bulk_update",
        lambda: Counter.objects.bulk_update([_set(_existing(), n=2**40)], ["n"]),
        "Counter.n: 1099511627776",
    ),
    (
        "upsert",
        lambda: Counter.objects.upsert([Counter(pk=1, n=2**32)], unique_fields=["id"]),
        "Counter.n: 4294967296",
    ),
]


def _set(obj: Any, **values: Any) -> Any:
    obj.__dict__.update(values)  # as loaded rows are filled: no conversion on the way in
    return obj


@pytest.mark.parametrize(("path", "call", "named"), CASES, ids=[c[0] for c in CASES])
def test_out_of_range_write_raises_validation_error_naming_field(
    db: Any, path: str, call: Callable[[], Any], named: str
) -> None:
    before = sorted(Counter.objects.values_list("pk", "n"))
    with pytest.raises(ValidationError) as info:
        call()
    message = str(info.value)
    assert message.startswith(named) and "out of range" in message
    assert info.value.code == "out_of_range"
    after = sorted(Counter.objects.values_list("pk", "n"))
    assert after == before or (path == "bulk_update" and after[:-1] == before)


def test_saving_an_existing_row_out_of_range(db: Any) -> None:
    obj = Counter.objects.create(n=5)
    obj.n = INT_MAX + 1
    with pytest.raises(ValidationError, match=r"Counter\.n: 2147483648 is out of range"):
        obj.save()
    assert Counter.objects.get(pk=obj.pk).n == 5


def test_the_edges_of_each_range_are_written_and_read_back(db: Any) -> None:
    obj = Counter.objects.create(n=INT_MAX, small=-(2**15), big=2**63 - 1, positive=INT_MAX)
    obj.refresh_from_db()
    assert (obj.n, obj.small, obj.big, obj.positive) == (INT_MAX, -(2**15), 2**63 - 1, INT_MAX)
    Counter.objects.update(n=-(2**31))
    assert Counter.objects.get().n == -(2**31)


def test_a_filter_out_of_range_matches_nothing(db: Any) -> None:
    Counter.objects.create(n=1)
    assert list(Counter.objects.filter(n=2**40)) == []
    assert Counter.objects.filter(n__lt=2**40).count() == 1
