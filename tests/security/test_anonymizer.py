"""``anonymize_model`` on SQLite and PostgreSQL: batches, uniqueness, determinism, failures."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import dorm
from dorm.contrib.anonymizer import REDACTED, AnonymizationError, anonymize_model
from dorm.contrib.anonymizer.strategies import make_masker
from dorm.db.connection import get_connection
from dorm.exceptions import FieldError
from dorm.test import CaptureQueriesContext


class Person(dorm.Model):
    email = dorm.EmailField(unique=True, pii=True)
    phone = dorm.CharField(max_length=20, unique=True, null=True)
    notes = dorm.TextField(default="")
    nickname = dorm.CharField(max_length=30, null=True)
    card = dorm.CharField(max_length=30, default="")
    ssn = dorm.CharField(max_length=11, default="", pii=True)
    age = dorm.IntegerField(default=0)
    score = dorm.DecimalField(max_digits=6, decimal_places=2, default=0)

    class Meta:
        app_label = "sec_anon"


class Contact(dorm.Model):
    email = dorm.CharField(max_length=100)
    city = dorm.CharField(max_length=30, default="")

    class Meta:
        app_label = "sec_anon"


MODELS = [Person, Contact]
pytestmark = pytest.mark.usefixtures("clean_tables")

N = 25  # rows; with batch_size=10: batches of 10, 10, 5
ORIGINAL_EMAILS = [f"person{i}@corp.example" for i in range(N)]


def _people(n: int = N) -> list[Any]:
    Person.objects.bulk_create(
        [
            Person(
                email=f"person{i}@corp.example",
                phone=f"+3460000{i:04d}",
                notes=f"note {i} ünïcode",
                nickname=f"nick{i}",
                card=f"4111-{i:04d}",
                ssn=f"123-45-{i:04d}",
                age=20 + i,
                score=f"{i}.25",
            )
            for i in range(n)
        ]
    )
    return list(Person.objects.order_by("pk"))


def _raw(columns: str) -> list[tuple[Any, ...]]:
    """The stored values, read with plain SQL (no field conversion)."""
    qn = get_connection().ops.quote_name
    table = qn(Person._meta.db_table)
    cols = ", ".join(qn(c) for c in columns.split())
    return get_connection().fetchall(f"SELECT {cols} FROM {table} ORDER BY {qn('id')}")


def test_masks_listed_columns_over_batches_and_leaves_the_rest_byte_identical(db: Any) -> None:
    before = _people()
    untouched = "id card ssn age score"
    raw_before = _raw(untouched)
    with CaptureQueriesContext() as ctx:
        changed = anonymize_model(
            Person,
            {
                "email": "random_email",
                "phone": "random_phone",
                "notes": "redact",
                "nickname": "null",
            },
            batch_size=10,
        )
    assert changed == N
    assert _raw(untouched) == raw_before
    after = list(Person.objects.order_by("pk"))
    emails = [p.email for p in after]
    assert len(set(emails)) == N and not set(emails) & set(ORIGINAL_EMAILS)
    assert all(e.startswith("anon.") and e.endswith("@example.invalid") for e in emails)
    phones = [p.phone for p in after]
    assert len(set(phones)) == N and all(p.startswith("+999") and len(p) == 16 for p in phones)
    assert {p.notes for p in after} == {REDACTED} and {p.nickname for p in after} == {None}
    assert [p.pk for p in after] == [p.pk for p in before]
    updates = [q["sql"] for q in ctx.captured_queries if "UPDATE" in q["sql"]]
    assert len(updates) == 3  # one statement per batch: rows are written in bulk
    selects = [q["sql"] for q in ctx.captured_queries if q["sql"].lstrip().startswith("SELECT")]
    assert all("OFFSET" not in s.upper() for s in selects)
    assert sum('"id" >' in s for s in selects) == 3  # keyset: pk > last_pk after the first


def test_seed_makes_pseudonyms_deterministic_across_runs_and_tables(db: Any) -> None:
    _people(12)
    for i in range(12):
        Contact.objects.create(email=f"person{i}@corp.example", city=f"c{i}")
    anonymize_model(Person, {"email": "random_email"}, batch_size=5, seed="s3cret")
    anonymize_model(Contact, {"email": "random_email"}, batch_size=7, seed="s3cret")
    people = dict(Person.objects.values_list("age", "email"))
    contacts = dict(Contact.objects.values_list("city", "email"))
    # Same original -> same pseudonym in both tables: the join survives the masking.
    assert all(people[20 + i] == contacts[f"c{i}"] for i in range(12))
    joined = Contact.objects.filter(email__in=list(people.values())).count()
    assert joined == 12

    # A re-run on the original data gives the same values; another seed does not.
    Person.objects.all().delete()
    _people(12)
    anonymize_model(Person, {"email": "random_email"}, batch_size=12, seed="s3cret")
    assert dict(Person.objects.values_list("age", "email")) == people
    Person.objects.all().delete()
    _people(12)
    anonymize_model(Person, {"email": "random_email"}, seed="other")
    assert not set(Person.objects.values_list("email", flat=True)) & set(people.values())


def test_without_seed_pseudonyms_are_random(db: Any) -> None:
    _people(5)
    anonymize_model(Person, {"email": "random_email"})
    first = set(Person.objects.values_list("email", flat=True))
    Person.objects.all().delete()
    _people(5)
    anonymize_model(Person, {"email": "random_email"})
    assert not first & set(Person.objects.values_list("email", flat=True))


def test_unique_column_redraws_a_pseudonym_another_row_holds(db: Any) -> None:
    _people(6)
    masker = make_masker("random_phone", "k", 20)
    first_phone = Person.objects.order_by("pk").values_list("phone", flat=True)[0]
    taken = masker(first_phone, 0)
    # The last row already holds the pseudonym the first row would get: a clash in a
    # unique column that the anonymizer must avoid, not an IntegrityError.
    last = Person.objects.order_by("-pk").first()
    assert last is not None
    Person.objects.filter(pk=last.pk).update(phone=taken)
    assert anonymize_model(Person, {"phone": "random_phone"}, batch_size=4, seed="k") == 6
    phones = list(Person.objects.order_by("pk").values_list("phone", flat=True))
    assert len(set(phones)) == 6
    assert phones[0] == masker(first_phone, 1)  # the fixed re-draw, still deterministic


def test_a_callable_giving_duplicates_in_a_unique_column_fails_before_writing(db: Any) -> None:
    _people(8)
    with pytest.raises(AnonymizationError, match="unique column 'email'") as info:
        anonymize_model(Person, {"email": lambda v: "same@x.invalid"}, batch_size=4)
    assert info.value.last_pk is None and info.value.rows_done == 0
    assert sorted(Person.objects.values_list("email", flat=True)) == sorted(ORIGINAL_EMAILS[:8])


def test_callable_strategy_gets_each_value(db: Any) -> None:
    _people(4)
    anonymize_model(Person, {"card": lambda v: "•••• " + v[-4:]})
    assert sorted(Person.objects.values_list("card", flat=True)) == [
        f"•••• {i:04d}" for i in range(4)
    ]


def test_failed_batch_keeps_earlier_batches_and_says_where_to_resume(db: Any) -> None:
    people = _people()
    raw_before = dict((r[0], r[1]) for r in _raw("id email"))
    poisoned = people[23].email  # in the third batch (rows 20..24)

    def mask(value: str) -> str:
        if value == poisoned:
            raise RuntimeError("cannot mask this one")
        return "masked-" + value

    with pytest.raises(AnonymizationError) as info:
        anonymize_model(Person, {"email": mask}, batch_size=10)
    err = info.value
    assert err.last_pk == people[19].pk and err.rows_done == 20
    assert f"start_after={people[19].pk!r}" in str(err)
    assert "RuntimeError: cannot mask this one" in str(err)
    after = dict((r[0], r[1]) for r in _raw("id email"))
    assert all(after[p.pk] == "masked-" + raw_before[p.pk] for p in people[:20])
    assert all(after[p.pk] == raw_before[p.pk] for p in people[20:])  # rolled back whole

    # Resume after the last committed row, with a strategy that now succeeds.
    done = anonymize_model(
        Person, {"email": lambda v: "masked-" + v}, batch_size=10, start_after=err.last_pk
    )
    assert done == 5
    final = dict((r[0], r[1]) for r in _raw("id email"))
    assert final == {pk: "masked-" + email for pk, email in raw_before.items()}


def test_database_error_in_a_batch_is_reported_with_the_resume_point(db: Any) -> None:
    people = _people(9)
    # A value too long for varchar(20) fails on PostgreSQL; SQLite does not check lengths,
    # so there a NOT NULL violation plays the same part.
    bad = people[7].pk
    if db.vendor == "postgresql":
        strategy: Any = lambda v: "x" * 40 if v == people[7].card else "ok"  # noqa: E731
        column = "card"
        Person.objects.filter(pk=bad).update(card="poison")
        people[7].card = "poison"
    else:
        strategy = lambda v: None if v == people[7].card else "ok"  # noqa: E731
        column = "card"
    with pytest.raises(AnonymizationError, match="rolled back") as info:
        anonymize_model(Person, {column: strategy}, batch_size=3)
    assert info.value.last_pk == people[5].pk and info.value.rows_done == 6
    cards = list(Person.objects.order_by("pk").values_list("card", flat=True))
    assert cards[:6] == ["ok"] * 6 and cards[6:] == [p.card for p in people[6:]]


@pytest.mark.parametrize(
    ("mapping", "error", "message"),
    [
        ({"mail": "random_email"}, FieldError, "'mail', which is not a concrete field"),
        ({"email": "random_ssn"}, ValueError, "unknown strategy 'random_ssn'"),
        ({"email": 42}, TypeError, "a strategy is a name or a callable"),
        ({"id": "null"}, ValueError, "primary key"),
        ({"card": "null"}, ValueError, "Person.card: strategy 'null' on a NOT NULL column"),
        ({"email": "redact"}, ValueError, "strategy 'redact' writes one value into a unique"),
        ({"ssn": "random_email"}, ValueError, "writes 45 characters, the column holds 11"),
    ],
)
def test_bad_mapping_raises_before_any_write(
    db: Any, mapping: dict[str, Any], error: type[Exception], message: str
) -> None:
    _people(3)
    before = _raw("id email phone notes nickname card ssn")
    # A valid column first: nothing of it may be written either.
    full = {"notes": "redact", **mapping}
    with CaptureQueriesContext() as ctx, pytest.raises(error, match=message):
        anonymize_model(Person, full)
    assert ctx.captured_queries == []
    assert _raw("id email phone notes nickname card ssn") == before


def test_bad_arguments(db: Any) -> None:
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        anonymize_model(Person, {"notes": "redact"}, batch_size=0)
    with pytest.raises(TypeError, match="needs a model class"):
        anonymize_model("sec_anon.Person", {"notes": "redact"})
    with pytest.raises(ValueError, match="must be a non-empty dict of column -> strategy"):
        anonymize_model(Person, {})
    with pytest.raises(TypeError, match="seed must be str, bytes or None"):
        anonymize_model(Person, {"notes": "redact"}, seed=3)


def test_unlisted_pii_fields_are_reported(db: Any, caplog: pytest.LogCaptureFixture) -> None:
    _people(2)
    with caplog.at_level(logging.WARNING, logger="dorm.contrib.anonymizer"):
        anonymize_model(Person, {"email": "random_email"})
    (record,) = [r for r in caplog.records if r.name == "dorm.contrib.anonymizer"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "sec_anon.Person: pii=True field(s) not in the anonymization mapping, left as they are: ssn"
    )
    assert sorted(Person.objects.values_list("ssn", flat=True)) == ["123-45-0000", "123-45-0001"]


def test_progress_is_printed_when_asked(db: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _people(5)
    anonymize_model(Person, {"notes": "redact"}, batch_size=2, progress=True)
    err = capsys.readouterr().err
    assert "\rsec_anon.Person: 2 row(s) anonymized" in err
    assert err.endswith("sec_anon.Person: 5 row(s) anonymized\n")
    anonymize_model(Person, {"notes": "redact"}, batch_size=2)  # not a terminal: silent
    assert capsys.readouterr().err == ""


def test_masked_values_are_hidden_in_query_logs(db: Any, caplog: pytest.LogCaptureFixture) -> None:
    _people(2)
    with caplog.at_level(logging.DEBUG, logger="dorm.db"):
        anonymize_model(Person, {"email": "random_email", "card": lambda v: "new-card"})
    updates = [r.getMessage() for r in caplog.records if "UPDATE" in r.getMessage()]
    assert updates, "the UPDATE was not logged"
    assert all("anon." not in m for m in updates)  # email is pii=True: masked
    assert any("new-card" in m for m in updates)  # card is not sensitive
