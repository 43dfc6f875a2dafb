"""JSONField key transforms and JSON lookups, on SQLite and PostgreSQL.

Every expected result is computed in Python from the documents the test stored.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

import dorm
from dorm.exceptions import FieldError, NotSupportedError
from dorm.functions import Cast
from dorm.models.json import KeyTextTransform, KeyTransform
from dorm.test import CaptureQueriesContext


class Doc(dorm.Model):
    label = dorm.CharField(max_length=20)
    data = dorm.JSONField(null=True)

    class Meta:
        app_label = "t_json"


MODELS = [Doc]
pytestmark = pytest.mark.usefixtures("clean_tables")

DOCS: dict[str, Any] = {
    "ada": {
        "name": "Ada",
        "age": 36,
        "address": {"city": "London", "zip": "N1"},
        "tags": ["math", "poetry"],
        "active": True,
        "nick": None,
    },
    "alan": {"name": "alan", "age": 41, "address": {"city": "Wilmslow"}, "tags": ["crypto"]},
    "grace": {
        "name": "Grace",
        "age": 85.5,
        "address": {"city": "New York", "zip": "10001"},
        "tags": [],
        "active": False,
        "nick": "amazing",
    },
    "list": [10, 20, {"name": "inner"}],
    "other": {"other": 1, "age": 9},
    "sqlnull": None,
}


@pytest.fixture
def docs(db: Any) -> dict[str, Any]:
    for label, data in DOCS.items():
        Doc.objects.create(label=label, data=data)
    return DOCS


def labels(qs: Any) -> list[str]:
    return sorted(qs.values_list("label", flat=True))


def where(pred: Any) -> list[str]:
    """The labels of the stored documents that ``pred(document)`` accepts."""
    out = []
    for label, data in DOCS.items():
        try:
            if pred(data):
                out.append(label)
        except (TypeError, KeyError, IndexError, AttributeError):
            pass
    return sorted(out)


def obj(d: Any) -> dict[str, Any]:
    return d if isinstance(d, dict) else {}


def test_key_exact_and_nested_keys(docs: Any) -> None:
    assert labels(Doc.objects.filter(data__name="Ada")) == where(lambda d: d["name"] == "Ada")
    assert labels(Doc.objects.filter(data__address__city="London")) == ["ada"]
    assert labels(Doc.objects.filter(data__age=41)) == where(lambda d: d["age"] == 41)
    assert labels(Doc.objects.filter(data__age=85.5)) == ["grace"]
    assert labels(Doc.objects.filter(data__active=True)) == where(lambda d: d["active"] is True)
    assert labels(Doc.objects.filter(data__address={"city": "Wilmslow"})) == ["alan"]
    assert labels(Doc.objects.filter(data__tags=["math", "poetry"])) == ["ada"]
    assert Doc.objects.get(data__name="Grace").label == "grace"
    # As in Django: a document without the key is neither equal nor unequal (SQL NULL);
    # a NULL column is kept by exclude().
    assert labels(Doc.objects.exclude(data__name="Ada")) == sorted(
        [*where(lambda d: d["name"] != "Ada"), "sqlnull"]
    )


def test_integer_indexes_into_arrays(docs: Any) -> None:
    assert labels(Doc.objects.filter(data__tags__0="math")) == where(
        lambda d: d["tags"][0] == "math"
    )
    assert labels(Doc.objects.filter(data__1=20)) == where(lambda d: d[1] == 20)
    assert labels(Doc.objects.filter(data__2__name="inner")) == ["list"]
    assert labels(Doc.objects.filter(data__tags__1__isnull=False)) == where(
        lambda d: len(d["tags"]) > 1
    )


def test_json_null_value_differs_from_missing_key(docs: Any) -> None:
    null_value = where(lambda d: "nick" in d and d["nick"] is None)
    missing = where(lambda d: "nick" not in d)  # a list has no key "nick" either
    assert labels(Doc.objects.filter(data__nick=None)) == null_value == ["ada"]
    assert labels(Doc.objects.filter(data__nick__isnull=True)) == sorted([*missing, "sqlnull"])
    assert labels(Doc.objects.filter(data__nick__isnull=False)) == where(lambda d: "nick" in d)


def test_transforms_chain_into_text_lookups(docs: Any) -> None:
    names = {k: obj(v).get("name") for k, v in DOCS.items()}
    expected = sorted(k for k, n in names.items() if isinstance(n, str) and "a" in n.lower())
    assert labels(Doc.objects.filter(data__name__icontains="A")) == expected
    assert labels(Doc.objects.filter(data__name__iexact="ALAN")) == ["alan"]
    assert labels(Doc.objects.filter(data__name__startswith="G")) == ["grace"]
    assert labels(Doc.objects.filter(data__name__istartswith="a")) == where(
        lambda d: d["name"].lower().startswith("a")
    )
    assert labels(Doc.objects.filter(data__address__city__endswith="York")) == ["grace"]
    assert labels(Doc.objects.filter(data__address__city__iendswith="LOW")) == ["alan"]
    assert labels(Doc.objects.filter(data__address__zip__regex=r"^\d+$")) == where(
        lambda d: re.search(r"^\d+$", d["address"]["zip"]) is not None
    )


def test_comparisons_and_in_on_keys(docs: Any) -> None:
    assert labels(Doc.objects.filter(data__age__gt=40)) == where(lambda d: d["age"] > 40)
    assert labels(Doc.objects.filter(data__age__lte=41)) == where(lambda d: d["age"] <= 41)
    assert labels(Doc.objects.filter(data__age__lt=85.5, data__age__gte=36)) == where(
        lambda d: 36 <= d["age"] < 85.5
    )
    assert labels(Doc.objects.filter(data__name__in=["Ada", "Grace", "nobody"])) == where(
        lambda d: d["name"] in ("Ada", "Grace")
    )
    assert labels(Doc.objects.filter(data__age__in=[36, 85.5])) == ["ada", "grace"]


def test_has_key_has_keys_has_any_keys(docs: Any) -> None:
    assert labels(Doc.objects.filter(data__has_key="nick")) == where(lambda d: "nick" in obj(d))
    assert labels(Doc.objects.filter(data__has_keys=["nick", "active"])) == where(
        lambda d: {"nick", "active"} <= set(obj(d))
    )
    assert labels(Doc.objects.filter(data__has_any_keys=["other", "active"])) == where(
        lambda d: bool({"other", "active"} & set(obj(d)))
    )
    assert labels(Doc.objects.filter(data__address__has_key="zip")) == where(
        lambda d: "zip" in d["address"]
    )
    with pytest.raises(TypeError, match="has_keys takes a non-empty list of keys"):
        list(Doc.objects.filter(data__has_keys="nick"))


def test_contains_and_contained_by(docs: Any, backend: Any) -> None:
    if backend.vendor != "postgresql":
        with pytest.raises(NotSupportedError, match="'contains' is only supported on PostgreSQL"):
            list(Doc.objects.filter(data__contains={"name": "Ada"}))
        with pytest.raises(NotSupportedError, match="'contained_by'"):
            list(Doc.objects.filter(data__contained_by={"name": "Ada"}))
        return
    assert labels(Doc.objects.filter(data__contains={"address": {"city": "London"}})) == ["ada"]
    assert labels(Doc.objects.filter(data__tags__contains=["crypto"])) == ["alan"]
    bigger = {"other": 1, "extra": 2}
    assert labels(Doc.objects.filter(data__contained_by=bigger)) == where(
        lambda d: isinstance(d, dict) and all(bigger.get(k) == v for k, v in d.items())
    )


def test_values_order_by_and_annotations_on_keys(docs: Any) -> None:
    got = dict(Doc.objects.filter(data__has_key="name").values_list("label", "data__address"))
    assert got == {k: v["address"] for k, v in DOCS.items() if "address" in obj(v)}
    rows = list(Doc.objects.filter(label="ada").values("data__name", "data__tags__1"))
    assert rows == [{"data__name": "Ada", "data__tags__1": "poetry"}]
    ordered = Doc.objects.filter(data__has_key="age").order_by("data__age")
    assert list(ordered.values_list("label", flat=True)) == sorted(
        (k for k, v in DOCS.items() if "age" in obj(v)), key=lambda k: DOCS[k]["age"]
    )
    desc = Doc.objects.filter(data__has_key="name").order_by("-data__name")
    named = [k for k, v in DOCS.items() if "name" in obj(v)]
    assert list(desc.values_list("label", flat=True)) == sorted(
        named, key=lambda k: DOCS[k]["name"], reverse=True
    )
    text = Doc.objects.annotate(city=KeyTextTransform("city", KeyTransform("address", "data")))
    assert dict(text.values_list("label", "city")) == {
        k: obj(v).get("address", {}).get("city") for k, v in DOCS.items()
    }
    assert dict(
        Doc.objects.filter(data__has_key="active")
        .annotate(flag=KeyTextTransform("active", "data"))
        .values_list("label", "flag")
    ) == {"ada": "true", "grace": "false"}
    ages = Doc.objects.filter(label="alan").annotate(
        n=Cast(KeyTextTransform("age", "data"), dorm.IntegerField())
    )
    assert ages.get().n == 41
    assert list(
        Doc.objects.filter(dorm.Q(data__name="Ada") | dorm.Q(data__age=41))
        .order_by("label")
        .values_list("label", flat=True)
    ) == ["ada", "alan"]


def test_key_sql_binds_keys_and_values(docs: Any, backend: Any) -> None:
    with CaptureQueriesContext() as ctx:
        list(Doc.objects.filter(data__address__city="Lon'don"))
    sql = ctx.captured_queries[-1]["sql"]
    assert "Lon'don" not in sql and "city" not in sql.split("params")[0], sql
    if backend.vendor == "postgresql":
        assert "->" in sql
    else:
        assert "->>" in sql


def test_errors_name_the_fault(docs: Any) -> None:
    with pytest.raises(FieldError, match="cannot select 'label__gt': 'gt' is not a field"):
        list(Doc.objects.values("label__gt"))
    with pytest.raises(FieldError, match="'label__gt': 'gt' is a lookup"):
        list(Doc.objects.annotate(x=dorm.F("label__gt")))
    # Past a JSON field every name is a key, as in Django: "gt" here is the key "gt".
    assert list(Doc.objects.filter(label="ada").values_list("data__age__gt", flat=True)) == [None]
    with pytest.raises(TypeError, match="a key name is a str or an int"):
        KeyTransform(1.5, "data")
    with pytest.raises(ValueError, match="isnull lookup takes True or False"):
        list(Doc.objects.filter(data__nick__isnull="yes"))


@pytest.mark.postgres
def test_postgres_indexes_serve_key_lookups(docs: Any, backend: Any) -> None:
    if backend.vendor != "postgresql":
        pytest.skip("jsonb indexes are PostgreSQL's")
    from dorm.db.connection import get_connection

    conn = get_connection()
    table = conn.ops.quote_name(Doc._meta.db_table)
    conn.execute(f"CREATE INDEX t_json_gin ON {table} USING gin (data)", ())
    conn.execute(f"CREATE INDEX t_json_name ON {table} ((data -> 'name'))", ())
    try:
        with dorm.transaction.atomic():
            conn.execute("SET LOCAL enable_seqscan = off", ())
            plans = [
                Doc.objects.filter(data__has_key="nick").explain(),
                Doc.objects.filter(data__contains={"name": "Ada"}).explain(),
                Doc.objects.filter(data__name="Ada").explain(),
            ]
        assert all("t_json_gin" in p for p in plans[:2]), plans
        assert "t_json_name" in plans[2], plans[2]
    finally:
        conn.execute("DROP INDEX t_json_gin", ())
        conn.execute("DROP INDEX t_json_name", ())


def test_async_key_queries(docs: Any) -> None:
    async def main() -> tuple[list[str], int]:
        qs = Doc.objects.filter(data__address__city__icontains="o").order_by("label")
        found = [d.label async for d in qs]
        return found, await Doc.objects.filter(data__has_key="tags").acount()

    found, count = asyncio.run(main())
    assert found == where(lambda d: "o" in d["address"]["city"].lower())
    assert count == len(where(lambda d: "tags" in d))


def test_old_sqlite_is_refused_with_its_version(docs: Any, backend: Any, monkeypatch: Any) -> None:
    if backend.vendor != "sqlite":
        pytest.skip("a SQLite version check")
    import sqlite3

    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 37, 2))
    with pytest.raises(NotSupportedError, match="need SQLite 3.38 or later"):
        list(Doc.objects.filter(data__name="Ada"))
