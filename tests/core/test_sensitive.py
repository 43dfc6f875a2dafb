"""Sensitive values are '***' in the query log, dorm's exception messages and query hooks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

import dorm
from dorm import plugins, signals
from dorm.db.utils import add_sensitive_pattern, reset_sensitive_patterns
from dorm.exceptions import IntegrityError, ValidationError
from dorm.plugins import hookimpl
from dorm.test import CaptureQueriesContext


class Account(dorm.Model):
    name = dorm.CharField(max_length=50)
    email = dorm.EmailField(pii=True, unique=True)
    api_token = dorm.CharField(max_length=64, default="")
    ssn = dorm.CharField(max_length=20, default="")
    pin = dorm.IntegerField(pii=True, default=0)

    class Meta:
        app_label = "sensitive"


MODELS = [Account]
pytestmark = pytest.mark.usefixtures("clean_tables")

MASK = "***"


@dataclass
class Capture:
    """Everything a log reader, a tracing plugin or a caller could see."""

    caplog: pytest.LogCaptureFixture
    hook_calls: list[dict[str, Any]] = field(default_factory=list)
    signal_calls: list[dict[str, Any]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def run(self, fn: Callable[[], Any], expect: type[BaseException] | None = None) -> Any:
        """Call ``fn``; with ``expect``, record the exception it must raise."""
        if expect is None:
            return fn()
        with pytest.raises(expect) as info:
            fn()
        self.errors.append(info.value)
        return None

    def text(self) -> str:
        parts: list[str] = []
        for record in self.caplog.records:
            parts.append(record.getMessage())
            parts.append(repr(getattr(record, "params", "")))
        for call in [*self.hook_calls, *self.signal_calls]:
            parts.append(repr(call))
            parts.append(str(call.get("error")))
        for exc in self.errors:
            # A traceback shows the chained driver error too.
            chained: BaseException | None = exc
            while chained is not None:
                parts.append(f"{chained!s} {chained!r}")
                context = None if chained.__suppress_context__ else chained.__context__
                chained = chained.__cause__ or context
        return "\n".join(parts)

    def check(self, hidden: Sequence[str], shown: Sequence[str] = ()) -> None:
        text = self.text()
        assert self.caplog.records, "nothing was logged on dorm.db"
        assert self.hook_calls and self.signal_calls, "the query hooks did not fire"
        for secret in hidden:
            assert secret not in text, f"{secret!r} leaked:\n{text}"
        assert MASK in text
        for value in shown:
            assert value in text, f"{value!r} should stay visible:\n{text}"


class Tracer:
    """A tracing plugin: records what dorm_pre_query / dorm_post_query are given."""

    def __init__(self, calls: list[dict[str, Any]]) -> None:
        self.calls = calls

    @hookimpl
    def dorm_pre_query(self, alias: str, sql: str, params: Sequence[object]) -> None:
        self.calls.append({"hook": "pre", "sql": sql, "params": params})

    @hookimpl
    def dorm_post_query(
        self, sql: str, params: Sequence[object], error: BaseException | None
    ) -> None:
        self.calls.append({"hook": "post", "sql": sql, "params": params, "error": error})


@pytest.fixture
def capture(caplog: pytest.LogCaptureFixture) -> Iterator[Capture]:
    cap = Capture(caplog)
    tracer = Tracer(cap.hook_calls)

    def on_query(signal: Any, **kwargs: Any) -> None:
        cap.signal_calls.append(kwargs)

    plugins.register(tracer, name="sensitive-tracer")
    signals.post_query.connect(on_query, weak=False)
    try:
        with caplog.at_level(logging.DEBUG, logger="dorm.db"):
            yield cap
    finally:
        signals.post_query.disconnect(on_query)
        plugins.unregister(tracer)


# -- pii=True ------------------------------------------------------------------------------------


def test_insert_and_update_mask_pii(db, capture: Capture) -> None:
    a = capture.run(lambda: Account.objects.create(name="Ada Visible", email="ada.hidden@x.io"))
    capture.run(
        lambda: Account.objects.bulk_create(
            [
                Account(name="Bob Visible", email="bob.hidden@x.io"),
                Account(name="Cy Visible", email="cy.hidden@x.io"),
            ]
        )
    )
    a.email = "ada.changed.hidden@x.io"
    capture.run(a.save)
    capture.run(
        lambda: Account.objects.filter(name="Bob Visible").update(email="bob.changed.hidden@x.io")
    )
    objs = list(Account.objects.filter(name__in=["Ada Visible", "Cy Visible"]).order_by("name"))
    objs[0].email, objs[1].email = "ada.bulk.hidden@x.io", "cy.bulk.hidden@x.io"
    objs[0].name = "Ada Renamed"
    capture.run(lambda: Account.objects.bulk_update(objs, ["email", "name"]))

    assert sorted(Account.objects.values_list("email", flat=True)) == [
        "ada.bulk.hidden@x.io",
        "bob.changed.hidden@x.io",
        "cy.bulk.hidden@x.io",
    ]
    capture.check(["hidden@x.io"], shown=["Ada Visible", "Bob Visible", "Ada Renamed"])


@pytest.mark.parametrize(
    "lookup, value",
    [
        ("exact", "eve.hidden@x.io"),
        ("iexact", "EVE.HIDDEN@X.IO"),
        ("contains", "e.hidden@x"),
        ("icontains", "E.HIDDEN@X"),
        ("startswith", "eve.hid"),
        ("istartswith", "EVE.HID"),
        ("endswith", "hidden@x.io"),
        ("regex", "^eve[.]hid"),
    ],
)
def test_select_filters_mask_pii(db, capture: Capture, lookup: str, value: str) -> None:
    Account.objects.create(name="Eve Visible", email="eve.hidden@x.io")
    found = capture.run(
        lambda: list(
            Account.objects.filter(name="Eve Visible", **{f"email__{lookup}": value}).values_list(
                "name", flat=True
            )
        )
    )
    assert found == ["Eve Visible"]
    capture.check([value], shown=["Eve Visible"])


def test_in_filter_masks_every_value(db, capture: Capture) -> None:
    Account.objects.create(name="Eve Visible", email="eve.hidden@x.io")
    found = capture.run(
        lambda: Account.objects.filter(
            email__in=["eve.hidden@x.io", "nobody.hidden@x.io"], name="Eve Visible"
        ).count()
    )
    assert found == 1
    capture.check(["hidden@x.io"], shown=["Eve Visible"])


def test_get_errors_mask_the_lookup_value(db, capture: Capture) -> None:
    Account.objects.create(name="Twin Visible", email="t1.hidden@x.io")
    Account.objects.create(name="Twin Visible", email="t2.hidden@x.io")
    capture.run(
        lambda: Account.objects.get(email="missing.hidden@x.io", name="Nobody Visible"),
        Account.DoesNotExist,
    )
    capture.run(
        lambda: Account.objects.get(email__endswith=".hidden@x.io", name="Twin Visible"),
        Account.MultipleObjectsReturned,
    )
    assert "name='Nobody Visible'" in str(capture.errors[0])
    assert f"email='{MASK}'" in str(capture.errors[0])
    capture.check(["hidden@x.io"], shown=["Nobody Visible", "Twin Visible"])


def test_unique_violation_masks_the_value(db, capture: Capture) -> None:
    Account.objects.create(name="First Visible", email="dup.hidden@x.io")
    capture.run(
        lambda: Account.objects.create(name="Second Visible", email="dup.hidden@x.io"),
        IntegrityError,
    )
    capture.run(
        lambda: Account.objects.bulk_create(
            [Account(name="Third Visible", email="dup.hidden@x.io")]
        ),
        IntegrityError,
    )
    other = Account.objects.create(name="Other Visible", email="other.hidden@x.io")
    other.email = "dup.hidden@x.io"
    capture.run(other.save, IntegrityError)
    capture.run(
        lambda: Account.objects.filter(pk=other.pk).update(email="dup.hidden@x.io"),
        IntegrityError,
    )
    if db.vendor == "postgresql":
        assert all("Key (email)=(***)" in str(e) for e in capture.errors), capture.errors
    capture.check(["dup.hidden@x.io", "other.hidden"], shown=["Second Visible"])


def test_validation_errors_mask_the_value(db, capture: Capture) -> None:
    capture.run(
        lambda: Account(name="Val Visible", email="not-an-email-hidden").full_clean(),
        ValidationError,
    )
    capture.run(lambda: Account.objects.filter(pin="9876-hidden").count(), ValidationError)
    capture.run(lambda: Account.objects.filter(pin__in=["4321-hidden"]).count(), ValidationError)
    capture.run(lambda: Account.objects.filter(pin__in=4321).count(), TypeError)
    Account.objects.create(name="Val Visible", email="val.hidden@x.io", pin=5)
    capture.run(lambda: Account.objects.filter(name="Val Visible").count())
    assert "is not an email address" in str(capture.errors[0])
    capture.check(["hidden", "9876", "4321"], shown=["Val Visible"])


def test_executemany_error_masks_every_row(db, capture: Capture) -> None:
    Account.objects.create(name="Many Visible", email="many.hidden@x.io")
    conn = dorm.db.connection.get_connection()
    qn = conn.ops.quote_name
    ph = conn.ops.placeholder
    sql = (
        f"INSERT INTO {qn(Account._meta.db_table)} "
        f"({qn('name')}, {qn('email')}, {qn('api_token')}, {qn('ssn')}, {qn('pin')}) "
        f"VALUES ({ph}, {ph}, {ph}, {ph}, {ph})"
    )
    rows = [
        ("Row Visible", "fresh.hidden@x.io", "", "", 0),
        ("Row Visible", "many.hidden@x.io", "", "", 0),
    ]
    capture.run(lambda: conn.executemany(sql, rows, [1]), IntegrityError)
    capture.check(["hidden@x.io"], shown=["Row Visible"])


# -- patterns ------------------------------------------------------------------------------------


def test_default_pattern_masks_token_column(db, capture: Capture) -> None:
    capture.run(
        lambda: Account.objects.create(
            name="Tok Visible", email="tok@x.io", api_token="tok-9f8e7d-value"
        )
    )
    capture.run(lambda: Account.objects.filter(api_token="tok-9f8e7d-value").count())
    capture.run(lambda: Account.objects.update(api_token="tok-1a2b3c-value"))
    capture.run(lambda: Account.objects.get(api_token="tok-000000-value"), Account.DoesNotExist)
    capture.check(["tok-9f8e7d", "tok-1a2b3c", "tok-000000"], shown=["Tok Visible"])


def test_added_pattern_masks_until_reset(db, capture: Capture) -> None:
    try:
        add_sensitive_pattern("ssn")
        capture.run(
            lambda: Account.objects.create(name="Ssn Visible", email="s@x.io", ssn="078-05-1120")
        )
        capture.run(lambda: Account.objects.filter(ssn__startswith="078-05").count())
        capture.run(lambda: Account.objects.get(ssn="999-99-9999"), Account.DoesNotExist)
        capture.check(["078-05", "999-99"], shown=["Ssn Visible"])
    finally:
        reset_sensitive_patterns()
    capture.caplog.clear()
    capture.run(lambda: Account.objects.filter(ssn="078-05-1120").count())
    text = "\n".join(r.getMessage() for r in capture.caplog.records)
    assert "078-05-1120" in text, "after reset_sensitive_patterns() ssn is an ordinary column"


def test_capture_queries_context_is_masked(db) -> None:
    with CaptureQueriesContext() as ctx:
        Account.objects.create(name="Cap Visible", email="cap.hidden@x.io", api_token="cap-tok")
    (query,) = [q for q in ctx.captured_queries if "INSERT" in q["sql"]]
    # name, email (pii), api_token (default pattern), ssn, pin (pii)
    assert tuple(query["params"]) == ("Cap Visible", MASK, MASK, "", MASK)
