"""The QuerySet API on both backends: retrieval, writes, chaining, slicing, caching, locking."""

from __future__ import annotations

import datetime
import threading
from decimal import Decimal

import pytest

import dorm
from dorm import transaction
from dorm.db.connection import get_connection
from dorm.exceptions import (
    FieldError,
    IntegrityError,
    OperationalError,
    TransactionManagementError,
)
from dorm.test import CaptureQueriesContext, assertNumQueries

UTC = datetime.UTC


class Publisher(dorm.Model):
    name = dorm.CharField(max_length=50, unique=True)

    class Meta:
        app_label = "t_qs"
        ordering = ["name"]


class Author(dorm.Model):
    name = dorm.CharField(max_length=50)
    age = dorm.IntegerField(default=30)
    email = dorm.CharField(max_length=80, null=True)

    class Meta:
        app_label = "t_qs"


class Book(dorm.Model):
    title = dorm.CharField(max_length=100)
    author = dorm.ForeignKey(Author, on_delete=dorm.CASCADE, related_name="books")
    publisher = dorm.ForeignKey(Publisher, on_delete=dorm.SET_NULL, null=True, related_name="books")
    pages = dorm.IntegerField(default=100)
    price = dorm.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0"))
    rating = dorm.FloatField(null=True)
    published = dorm.DateField(null=True)

    class Meta:
        app_label = "t_qs"
        get_latest_by = "published"


class Product(dorm.Model):
    sku = dorm.CharField(max_length=20, unique=True)
    name = dorm.CharField(max_length=50)
    stock = dorm.IntegerField(default=0)

    class Meta:
        app_label = "t_qs"


class Event(dorm.Model):
    name = dorm.CharField(max_length=50)
    at = dorm.DateTimeField()

    class Meta:
        app_label = "t_qs"


class Score(dorm.Model):
    player = dorm.CharField(max_length=20)
    points = dorm.IntegerField()

    class Meta:
        app_label = "t_qs"
        ordering = ["points"]


MODELS = [Publisher, Author, Book, Product, Event, Score]
pytestmark = pytest.mark.usefixtures("clean_tables")


@pytest.fixture
def library(db):
    """Three authors, two publishers, five books with distinct values."""
    ada = Author.objects.create(name="Ada", age=36, email="ada@example.com")
    bob = Author.objects.create(name="Bob", age=25)
    cy = Author.objects.create(name="Cy", age=50, email="cy@example.com")
    acme = Publisher.objects.create(name="Acme")
    zeta = Publisher.objects.create(name="Zeta")
    books = {
        "Alpha": Book.objects.create(
            title="Alpha",
            author=ada,
            publisher=acme,
            pages=100,
            price="10.00",
            rating=4.5,
            published=datetime.date(2020, 1, 5),
        ),
        "Beta": Book.objects.create(
            title="Beta",
            author=ada,
            publisher=zeta,
            pages=200,
            price="20.00",
            rating=3.0,
            published=datetime.date(2021, 6, 1),
        ),
        "Gamma": Book.objects.create(
            title="Gamma",
            author=bob,
            publisher=acme,
            pages=300,
            price="30.00",
            rating=None,
            published=datetime.date(2019, 3, 9),
        ),
        "Delta": Book.objects.create(
            title="Delta",
            author=cy,
            publisher=None,
            pages=400,
            price="40.00",
            rating=5.0,
            published=datetime.date(2022, 12, 31),
        ),
        "Eps": Book.objects.create(
            title="Eps", author=cy, publisher=zeta, pages=50, price="5.50", rating=1.0
        ),
    }
    return {"ada": ada, "bob": bob, "cy": cy, "acme": acme, "zeta": zeta, **books}


def titles(qs) -> list[str]:
    return [b.title for b in qs]


# -- retrieval ------------------------------------------------------------------------------------


def test_all_filter_exclude(library) -> None:
    assert sorted(titles(Book.objects.all())) == ["Alpha", "Beta", "Delta", "Eps", "Gamma"]
    assert sorted(titles(Book.objects.filter(author__name="Ada"))) == ["Alpha", "Beta"]
    assert sorted(titles(Book.objects.exclude(author__name="Ada"))) == ["Delta", "Eps", "Gamma"]
    # Chained filters AND together; keyword lookups in one call too.
    qs = Book.objects.filter(pages__gte=100).filter(price__lt=Decimal("35"))
    assert sorted(titles(qs)) == ["Alpha", "Beta", "Gamma"]
    assert titles(Book.objects.filter(pages__gte=100, author__age__gt=40)) == ["Delta"]
    # exclude() on a nullable column keeps NULL rows, as in Django.
    assert sorted(titles(Book.objects.exclude(rating=3.0))) == [
        "Alpha",
        "Delta",
        "Eps",
        "Gamma",
    ]


def test_get_returns_one_and_raises_with_messages(library) -> None:
    assert Book.objects.get(title="Beta").pages == 200
    assert Book.objects.filter(author=library["bob"]).get().title == "Gamma"
    with pytest.raises(Book.DoesNotExist) as missing:
        Book.objects.get(title="Nope")
    assert "Book matching query does not exist" in str(missing.value)
    assert "title='Nope'" in str(missing.value)
    assert isinstance(missing.value, dorm.exceptions.ObjectDoesNotExist)
    with pytest.raises(Book.MultipleObjectsReturned) as many:
        Book.objects.get(author__name="Ada")
    assert "get() returned more than one Book -- it returned 2" in str(many.value)
    assert isinstance(many.value, dorm.exceptions.MultipleObjectsReturned)


def test_get_caps_rows_fetched(db) -> None:
    Product.objects.bulk_create([Product(sku=f"s{i}", name="same") for i in range(30)])
    with CaptureQueriesContext() as ctx, pytest.raises(Product.MultipleObjectsReturned) as exc:
        Product.objects.get(name="same")
    assert "more than 21" in str(exc.value)
    assert "LIMIT 21" in ctx[0]["sql"]


def test_create_and_get_or_create(db) -> None:
    p = Product.objects.create(sku="a1", name="Apple", stock=3)
    assert p.pk is not None
    assert Product.objects.get(pk=p.pk).name == "Apple"
    obj, created = Product.objects.get_or_create(sku="a1", defaults={"name": "Other"})
    assert (obj.pk, obj.name, created) == (p.pk, "Apple", False)
    obj, created = Product.objects.get_or_create(sku="b2", defaults={"name": "Banana", "stock": 7})
    assert created is True
    assert Product.objects.get(sku="b2").stock == 7
    assert Product.objects.count() == 2
    # Lookups with __ are not copied into the new object; defaults callables are called.
    obj, created = Product.objects.get_or_create(
        sku__iexact="C3", defaults={"sku": "C3", "name": lambda: "Cherry"}
    )
    assert created and Product.objects.get(sku="C3").name == "Cherry"
    with pytest.raises(FieldError, match="invalid field name"):
        Product.objects.get_or_create(sku="d4", defaults={"colour": "red"})


def test_update_or_create(db) -> None:
    obj, created = Product.objects.update_or_create(sku="x", defaults={"name": "X", "stock": 1})
    assert created is True
    obj2, created = Product.objects.update_or_create(sku="x", defaults={"stock": 9})
    assert created is False and obj2.pk == obj.pk
    row = Product.objects.get(sku="x")
    assert (row.name, row.stock) == ("X", 9)
    obj3, created = Product.objects.update_or_create(
        sku="y", defaults={"stock": 5}, create_defaults={"name": "Y", "stock": 2}
    )
    assert created and Product.objects.get(sku="y").stock == 2


def test_exists_or_create(db) -> None:
    existed, obj = Product.objects.exists_or_create(sku="e", defaults={"name": "E"})
    assert existed is False and obj.pk is not None
    existed, again = Product.objects.exists_or_create(sku="e", defaults={"name": "Other"})
    assert existed is True and again.pk == obj.pk and again.name == "E"


def test_count_exists_first_last(library) -> None:
    assert Book.objects.count() == 5
    assert Book.objects.filter(pages__gt=150).count() == 3
    assert Book.objects.filter(title="Nope").count() == 0
    assert Book.objects.exists() is True
    assert Book.objects.filter(title="Nope").exists() is False
    # first()/last() without ordering use the primary key.
    assert Book.objects.first().title == "Alpha"
    assert Book.objects.last().title == "Eps"
    assert Book.objects.order_by("pages").first().title == "Eps"
    assert Book.objects.order_by("pages").last().title == "Delta"
    assert Book.objects.filter(title="Nope").first() is None
    assert Book.objects.filter(title="Nope").last() is None
    # Meta.ordering is honoured.
    assert Publisher.objects.first().name == "Acme"
    assert Publisher.objects.last().name == "Zeta"


def test_latest_and_earliest(library) -> None:
    # Meta.get_latest_by = "published"; the NULL row must not win on either backend.
    assert Book.objects.filter(published__isnull=False).latest().title == "Delta"
    # NULL sorts first ascending on SQLite and last on PostgreSQL (as in Django).
    assert Book.objects.earliest().title == ("Eps" if db_vendor() == "sqlite" else "Gamma")
    assert Book.objects.filter(published__isnull=False).earliest().title == "Gamma"
    assert Book.objects.latest("pages").title == "Delta"
    assert Book.objects.earliest("pages").title == "Eps"
    assert Book.objects.latest("-pages").title == "Eps"
    assert Book.objects.earliest("author__age", "pages").title == "Gamma"
    with pytest.raises(Book.DoesNotExist):
        Book.objects.filter(title="Nope").latest()
    with pytest.raises(ValueError, match="get_latest_by"):
        Author.objects.latest()


def test_in_bulk(library) -> None:
    ids = [library["Alpha"].pk, library["Gamma"].pk, 999999]
    found = Book.objects.in_bulk(ids)
    assert {k: v.title for k, v in found.items()} == {
        library["Alpha"].pk: "Alpha",
        library["Gamma"].pk: "Gamma",
    }
    assert Book.objects.in_bulk([]) == {}
    assert len(Book.objects.in_bulk()) == 5
    by_name = Publisher.objects.in_bulk(["Acme"], field_name="name")
    assert list(by_name) == ["Acme"] and by_name["Acme"].pk == library["acme"].pk
    with pytest.raises(ValueError, match="unique"):
        Book.objects.in_bulk(["Alpha"], field_name="title")


# -- writes ---------------------------------------------------------------------------------------


def test_bulk_create_sets_pks_in_batches(db) -> None:
    objs = [Product(sku=f"p{i}", name=f"n{i}", stock=i) for i in range(7)]
    with CaptureQueriesContext() as ctx:
        result = Product.objects.bulk_create(objs, batch_size=3)
    inserts = [q for q in ctx.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 3
    assert all(a is b for a, b in zip(result, objs, strict=True))
    assert all(o.pk is not None for o in objs)
    assert len({o.pk for o in objs}) == 7
    for o in objs:
        assert Product.objects.get(pk=o.pk).sku == o.sku
        assert o._state.adding is False
    assert Product.objects.bulk_create([]) == []
    with pytest.raises(ValueError):
        Product.objects.bulk_create([Product(sku="z", name="z")], batch_size=0)


def test_bulk_create_ignore_conflicts(db) -> None:
    Product.objects.create(sku="dup", name="original", stock=1)
    Product.objects.bulk_create(
        [Product(sku="dup", name="new", stock=5), Product(sku="fresh", name="f")],
        ignore_conflicts=True,
    )
    assert Product.objects.get(sku="dup").name == "original"
    assert Product.objects.filter(sku="fresh").exists()
    with pytest.raises(IntegrityError):
        Product.objects.bulk_create([Product(sku="dup", name="again")])


def test_bulk_create_update_conflicts(db) -> None:
    old = Product.objects.create(sku="u1", name="old", stock=1)
    objs = [Product(sku="u1", name="new", stock=10), Product(sku="u2", name="two", stock=2)]
    Product.objects.bulk_create(
        objs, update_conflicts=True, unique_fields=["sku"], update_fields=["stock"]
    )
    row = Product.objects.get(sku="u1")
    assert (row.pk, row.name, row.stock) == (old.pk, "old", 10)
    assert Product.objects.get(sku="u2").stock == 2
    assert objs[0].pk == old.pk
    assert objs[1].pk == Product.objects.get(sku="u2").pk
    with pytest.raises(ValueError, match="unique_fields"):
        Product.objects.bulk_create(
            [Product(sku="q")], update_conflicts=True, update_fields=["name"]
        )
    with pytest.raises(ValueError, match="update_fields"):
        Product.objects.bulk_create(
            [Product(sku="q")], update_conflicts=True, unique_fields=["sku"]
        )
    with pytest.raises(FieldError, match="Product"):
        Product.objects.bulk_create(
            [Product(sku="q")], update_conflicts=True, unique_fields=["sku"], update_fields=["x"]
        )
    with pytest.raises(ValueError, match="exclusive"):
        Product.objects.bulk_create(
            [Product(sku="q")], ignore_conflicts=True, update_conflicts=True
        )


def test_bulk_update(db) -> None:
    objs = Product.objects.bulk_create([Product(sku=f"b{i}", name="x", stock=i) for i in range(5)])
    for o in objs:
        o.stock = o.stock * 10
        o.name = f"name-{o.sku}"
    with CaptureQueriesContext() as ctx:
        rows = Product.objects.bulk_update(objs, ["stock", "name"], batch_size=2)
    assert rows == 5
    assert len([q for q in ctx.captured_queries if q["sql"].startswith("UPDATE")]) == 3
    assert sorted(Product.objects.values_list("sku", "stock", "name")) == [
        (f"b{i}", i * 10, f"name-b{i}") for i in range(5)
    ]
    assert Product.objects.bulk_update([], ["stock"]) == 0
    with pytest.raises(ValueError, match="primary key"):
        Product.objects.bulk_update(objs, ["id"])
    with pytest.raises(FieldError):
        Product.objects.bulk_update(objs, ["nope"])


def test_update_returns_count_and_f_arithmetic(db) -> None:
    Product.objects.bulk_create(
        [Product(sku="a", name="a", stock=5), Product(sku="b", name="b", stock=1)]
        + [Product(sku="c", name="c", stock=0)]
    )
    assert Product.objects.filter(stock__gt=0).update(stock=dorm.F("stock") - 1) == 2
    assert dict(Product.objects.values_list("sku", "stock")) == {"a": 4, "b": 0, "c": 0}
    assert Product.objects.update(stock=dorm.F("stock") * 2 + 1) == 3
    assert dict(Product.objects.values_list("sku", "stock")) == {"a": 9, "b": 1, "c": 1}
    assert Product.objects.filter(sku="none").update(stock=3) == 0
    with pytest.raises(FieldError, match="not a concrete field"):
        Product.objects.update(colour="red")


def test_update_across_relation_filter(library) -> None:
    n = Book.objects.filter(author__name="Ada").update(pages=dorm.F("pages") + 1)
    assert n == 2
    assert sorted(Book.objects.filter(author__name="Ada").values_list("pages", flat=True)) == [
        101,
        201,
    ]
    assert Book.objects.get(title="Gamma").pages == 300


def test_delete_returns_counts(library) -> None:
    total, per_model = Book.objects.filter(author__name="Ada").delete()
    assert total == 2 and per_model == {"t_qs.Book": 2}
    assert Book.objects.count() == 3
    total, per_model = Author.objects.filter(name="Cy").delete()
    assert per_model == {"t_qs.Book": 2, "t_qs.Author": 1}
    assert sorted(titles(Book.objects.all())) == ["Gamma"]
    with pytest.raises(TypeError):
        Book.objects.all()[:1].delete()


# -- ordering ------------------------------------------------------------------------------------


def test_order_by_variants(library) -> None:
    assert titles(Book.objects.order_by("pages")) == ["Eps", "Alpha", "Beta", "Gamma", "Delta"]
    assert titles(Book.objects.order_by("-pages")) == ["Delta", "Gamma", "Beta", "Alpha", "Eps"]
    assert titles(Book.objects.order_by("author__name", "-pages")) == [
        "Beta",
        "Alpha",
        "Gamma",
        "Delta",
        "Eps",
    ]
    assert titles(Book.objects.order_by("-author__age", "title")) == [
        "Delta",
        "Eps",
        "Alpha",
        "Beta",
        "Gamma",
    ]
    # order_by() replaces earlier ordering.
    assert titles(Book.objects.order_by("-pages").order_by("title")) == sorted(
        titles(Book.objects.all())
    )
    assert titles(Book.objects.order_by("pages").reverse()) == [
        "Delta",
        "Gamma",
        "Beta",
        "Alpha",
        "Eps",
    ]
    random_titles = titles(Book.objects.order_by("?"))
    assert sorted(random_titles) == ["Alpha", "Beta", "Delta", "Eps", "Gamma"]
    # 30 draws of 5 rows all in one order would mean "?" is not random (odds ~120**-29).
    orders = {tuple(titles(Book.objects.order_by("?"))) for _ in range(30)}
    assert len(orders) > 1


def test_order_by_related_model_uses_its_ordering(library) -> None:
    # Publisher's Meta.ordering is name; NULL publisher sorts last ascending on PostgreSQL and
    # first on SQLite, so restrict to books that have one.
    qs = Book.objects.filter(publisher__isnull=False).order_by("publisher", "pages")
    assert titles(qs) == ["Alpha", "Gamma", "Eps", "Beta"]


def test_order_by_expression_nulls_last(library) -> None:
    qs = Book.objects.order_by(dorm.F("rating").desc(nulls_last=True), "title")
    assert titles(qs) == ["Delta", "Alpha", "Beta", "Eps", "Gamma"]
    qs = Book.objects.order_by(dorm.F("rating").asc(nulls_first=True))
    assert titles(qs) == ["Gamma", "Eps", "Beta", "Alpha", "Delta"]
    qs = Book.objects.order_by(dorm.F("rating").asc(nulls_last=True)).reverse()
    assert titles(qs) == ["Gamma", "Delta", "Alpha", "Beta", "Eps"]


def test_distinct(library) -> None:
    names = list(Book.objects.values_list("author__name", flat=True).distinct())
    assert sorted(names) == ["Ada", "Bob", "Cy"]
    assert Book.objects.values("author").distinct().count() == 3
    qs = Author.objects.filter(books__pages__gte=50).distinct()
    assert sorted(a.name for a in qs) == ["Ada", "Bob", "Cy"]
    assert Author.objects.filter(books__pages__gte=50).count() == 5


# -- values / values_list ------------------------------------------------------------------------


def test_values(library) -> None:
    rows = list(Book.objects.filter(title="Alpha").values("title", "author__name", "price"))
    assert rows == [{"title": "Alpha", "author__name": "Ada", "price": Decimal("10.00")}]
    full = Book.objects.filter(title="Alpha").values().get()
    assert full["title"] == "Alpha" and full["author_id"] == library["ada"].pk
    assert set(full) == {
        "id",
        "title",
        "author_id",
        "publisher_id",
        "pages",
        "price",
        "rating",
        "published",
    }
    assert full["published"] == datetime.date(2020, 1, 5)
    assert list(Author.objects.order_by("name").values("name")[:2]) == [
        {"name": "Ada"},
        {"name": "Bob"},
    ]


def test_values_list_flat_and_named(library) -> None:
    ordered = Book.objects.order_by("pages")
    assert list(ordered.values_list("title", "pages")[:2]) == [("Eps", 50), ("Alpha", 100)]
    assert list(ordered.values_list("title", flat=True)) == [
        "Eps",
        "Alpha",
        "Beta",
        "Gamma",
        "Delta",
    ]
    row = ordered.values_list("title", "author__name", named=True).first()
    assert row.title == "Eps" and row.author_name == "Cy"
    assert row == ("Eps", "Cy")
    with pytest.raises(TypeError):
        Book.objects.values_list("title", "pages", flat=True)
    with pytest.raises(TypeError):
        Book.objects.values_list("title", flat=True, named=True)


def test_values_list_with_annotation_order_preserved(library) -> None:
    rows = list(
        Author.objects.annotate(n=dorm.Count("books")).order_by("name").values_list("n", "name")
    )
    assert rows == [(2, "Ada"), (1, "Bob"), (2, "Cy")]


# -- annotate / aggregate ------------------------------------------------------------------------


def test_annotate_and_filter_on_annotation(library) -> None:
    qs = Author.objects.annotate(n=dorm.Count("books"), total=dorm.Sum("books__pages"))
    got = {a.name: (a.n, a.total) for a in qs}
    assert got == {"Ada": (2, 300), "Bob": (1, 300), "Cy": (2, 450)}
    assert sorted(a.name for a in qs.filter(n__gte=2)) == ["Ada", "Cy"]
    assert [a.name for a in qs.order_by("-total", "name")] == ["Cy", "Ada", "Bob"]
    with pytest.raises(ValueError, match="conflicts with a field"):
        Author.objects.annotate(name=dorm.Count("books"))


def test_aggregate(library) -> None:
    result = Book.objects.aggregate(
        n=dorm.Count("id"),
        total=dorm.Sum("pages"),
        avg=dorm.Avg("pages"),
        lo=dorm.Min("price"),
        hi=dorm.Max("price"),
    )
    assert result == {
        "n": 5,
        "total": 1050,
        "avg": pytest.approx(210.0),
        "lo": Decimal("5.50"),
        "hi": Decimal("40.00"),
    }
    assert isinstance(result["hi"], Decimal)
    assert Book.objects.aggregate(n=dorm.Count("author", distinct=True)) == {"n": 3}
    assert Book.objects.aggregate(
        n=dorm.Count("id", filter=dorm.Q(pages__gte=200)),
        s=dorm.Sum("pages", filter=dorm.Q(author__name="Ada")),
    ) == {"n": 3, "s": 300}
    empty = Book.objects.filter(title="Nope").aggregate(n=dorm.Count("id"), s=dorm.Sum("pages"))
    assert empty == {"n": 0, "s": None}
    assert Book.objects.aggregate(dorm.Max("pages")) == {"pages__max": 400}
    with pytest.raises(TypeError, match="not an aggregate"):
        Book.objects.aggregate(x=dorm.F("pages"))


def test_aggregate_over_sliced_and_grouped(library) -> None:
    assert Book.objects.order_by("pages")[:2].aggregate(s=dorm.Sum("pages")) == {"s": 150}
    assert Book.objects.order_by("pages")[:2].count() == 2
    annotated = Author.objects.annotate(n=dorm.Count("books"))
    assert annotated.aggregate(m=dorm.Max("n")) == {"m": 2}
    assert annotated.count() == 3


def test_group_by_values_annotate(library) -> None:
    rows = list(
        Book.objects.values("author__name").annotate(n=dorm.Count("id")).order_by("author__name")
    )
    assert rows == [
        {"author__name": "Ada", "n": 2},
        {"author__name": "Bob", "n": 1},
        {"author__name": "Cy", "n": 2},
    ]
    having = (
        Book.objects.values("author__name")
        .annotate(total=dorm.Sum("pages"))
        .filter(total__gt=300)
        .values_list("author__name", flat=True)
    )
    assert list(having) == ["Cy"]


# -- select_related / only / defer ---------------------------------------------------------------


def test_select_related_single_query(library) -> None:
    with assertNumQueries(1):
        books = list(Book.objects.select_related("author", "publisher").order_by("pages"))
        assert [(b.title, b.author.name) for b in books][:2] == [("Eps", "Cy"), ("Alpha", "Ada")]
        assert books[-1].publisher is None
        assert books[1].publisher.name == "Acme"
    with assertNumQueries(1):
        book = Book.objects.select_related().get(title="Beta")
        assert book.author.name == "Ada"
    with pytest.raises(FieldError, match="select_related"):
        list(Book.objects.select_related("title"))


def test_only_and_defer(library) -> None:
    book = Book.objects.only("title").get(title="Alpha")
    assert "pages" not in book.__dict__ and book.__dict__["title"] == "Alpha"
    with assertNumQueries(1):
        assert book.pages == 100
    book = Book.objects.defer("pages", "price").get(title="Beta")
    assert "pages" not in book.__dict__ and "price" not in book.__dict__
    assert book.title == "Beta"
    with assertNumQueries(1):
        assert book.price == Decimal("20.00")
    with pytest.raises(FieldError, match="Book.only"):
        Book.objects.only("nope")
    with pytest.raises(FieldError, match="Book.defer"):
        Book.objects.defer("nope")


# -- iteration -----------------------------------------------------------------------------------


def test_iterator_chunks_do_not_cache(db) -> None:
    Product.objects.bulk_create([Product(sku=f"i{i}", name="n", stock=i) for i in range(25)])
    qs = Product.objects.order_by("stock")
    with CaptureQueriesContext() as ctx:
        got = [p.stock for p in qs.iterator(chunk_size=4)]
    # PostgreSQL wraps the named cursor in BEGIN / COMMIT; there is still one SELECT.
    assert [q["sql"].split()[0] for q in ctx.captured_queries if q["sql"] != "BEGIN"][:1] == [
        "SELECT"
    ]
    assert len([q for q in ctx.captured_queries if q["sql"].startswith("SELECT")]) == 1
    assert got == list(range(25))
    assert qs._result_cache is None
    assert list(qs.values_list("stock", flat=True).iterator(chunk_size=10))[:3] == [0, 1, 2]
    with pytest.raises(ValueError):
        list(qs.iterator(chunk_size=0))


def test_iterator_uses_server_side_cursor_on_postgresql(db) -> None:
    if db.vendor != "postgresql":
        pytest.skip("server-side cursors are PostgreSQL-only")
    import psycopg

    Product.objects.bulk_create([Product(sku=f"c{i}", name="n", stock=i) for i in range(10)])
    conn = get_connection()
    # Inside atomic(): the cursor is visible in this session's pg_cursors.
    with transaction.atomic():
        it = Product.objects.order_by("stock").iterator(chunk_size=3)
        first = next(it)
        cursors = conn.fetchall("SELECT name, statement FROM pg_cursors")
        assert first.stock == 0
        assert len(cursors) == 1 and cursors[0][0].startswith("dorm_")
        assert "DECLARE" in cursors[0][1].upper()
        assert [p.stock for p in it] == list(range(1, 10))
    # Outside atomic(): another connection sees the session fetching from a cursor.
    it = Product.objects.order_by("stock").iterator(chunk_size=3)
    next(it)
    with psycopg.connect(db.pg.dsn, autocommit=True) as other:
        rows = other.execute(
            "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND query ILIKE 'FETCH%%'"
        ).fetchall()
    assert rows, "no FETCH from a named cursor seen in pg_stat_activity"
    assert len(list(it)) == 9
    # Abandoning a stream part-way ends its transaction and frees the connection.
    it = Product.objects.iterator(chunk_size=2)
    next(it)
    it.close()
    with psycopg.connect(db.pg.dsn, autocommit=True) as other:
        open_tx = other.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%%'"
        ).fetchone()
    assert open_tx == (0,)
    assert Product.objects.count() == 10


def test_laziness_and_result_cache(library) -> None:
    with assertNumQueries(0):
        qs = Book.objects.filter(pages__gt=0).exclude(title="x").order_by("title")
        qs = qs.select_related("author")[:10]
    with assertNumQueries(1):
        assert len(qs) == 5
        assert [b.title for b in qs] == ["Alpha", "Beta", "Delta", "Eps", "Gamma"]
        assert bool(qs) is True
        assert qs.count() == 5
        assert qs.exists() is True
        assert qs[0].title == "Alpha"
    # A new chained QuerySet runs its own query.
    all_qs = Book.objects.all()
    with assertNumQueries(1):
        list(all_qs)
        list(all_qs)
    with assertNumQueries(1):
        list(all_qs.all())


def test_slicing(library) -> None:
    qs = Book.objects.order_by("pages")
    with CaptureQueriesContext() as ctx:
        assert titles(qs[:2]) == ["Eps", "Alpha"]
    assert len(ctx) == 1 and "LIMIT 2" in ctx[0]["sql"]
    assert titles(qs[2:4]) == ["Beta", "Gamma"]
    assert titles(qs[3:]) == ["Gamma", "Delta"]
    assert qs[3].title == "Gamma"
    assert titles(qs[1:4][1:2]) == ["Beta"]
    assert titles(qs[::2]) == ["Eps", "Beta", "Delta"]
    with pytest.raises(IndexError):
        qs[10]
    with pytest.raises(ValueError, match="negative"):
        qs[-1]
    with pytest.raises(ValueError, match="negative"):
        qs[-2:]
    with pytest.raises(TypeError):
        qs["a"]
    with pytest.raises(TypeError, match="slice"):
        qs[:2].filter(pages=1)
    with pytest.raises(TypeError, match="slice"):
        qs[:2].order_by("title")
    assert titles(qs[5:5]) == []


def test_none_union_using(library) -> None:
    with assertNumQueries(0):
        assert list(Book.objects.none()) == []
        assert Book.objects.none().count() == 0
        assert Book.objects.none().exists() is False
        assert Book.objects.filter(pk__in=[]).count() == 0
    u = Book.objects.filter(pages__lt=100).union(Book.objects.filter(pages__gt=300))
    assert sorted(titles(u)) == ["Delta", "Eps"]
    ordered = (
        Book.objects.filter(pages__lte=100)
        .values_list("title", flat=True)
        .union(Book.objects.filter(pages__gte=400).values_list("title", flat=True))
        .order_by("-title")
    )
    assert list(ordered) == ["Eps", "Delta", "Alpha"]
    dup = Book.objects.filter(title="Alpha").values_list("title", flat=True)
    assert list(dup.union(dup)) == ["Alpha"]
    assert list(dup.union(dup, all=True)) == ["Alpha", "Alpha"]
    assert sorted(titles(Book.objects.none().union(Book.objects.filter(title="Beta")))) == ["Beta"]
    assert titles(Book.objects.using("default").filter(title="Beta")) == ["Beta"]
    with pytest.raises(dorm.exceptions.ImproperlyConfigured, match="'nope'"):
        list(Book.objects.using("nope"))


def test_combining_with_and_or(library) -> None:
    a = Book.objects.filter(pages__gte=200)
    b = Book.objects.filter(author__name="Ada")
    assert titles(a & b) == ["Beta"]
    assert sorted(titles(a | b)) == ["Alpha", "Beta", "Delta", "Gamma"]
    with pytest.raises(TypeError):
        a & Author.objects.all()


def test_explain(library) -> None:
    with CaptureQueriesContext() as ctx:
        plan = Book.objects.filter(pages__gt=10).explain()
    assert ctx[0]["sql"].startswith("EXPLAIN")
    assert isinstance(plan, str) and plan
    if db_vendor() == "postgresql":
        assert "Scan" in plan
        assert "actual time" in Book.objects.all().explain(analyze=True)
        with pytest.raises(ValueError, match="EXPLAIN option"):
            Book.objects.all().explain(format="json; drop table x")
    else:
        assert "SCAN" in plan.upper()


def db_vendor() -> str:
    return get_connection().vendor


# -- unknown names fail before SQL ---------------------------------------------------------------


def test_unknown_names_raise_before_any_query(library) -> None:
    with CaptureQueriesContext() as ctx:
        with pytest.raises(FieldError) as exc:
            Book.objects.filter(nope=1)
        assert "Book" in str(exc.value) and "'nope'" in str(exc.value)
        assert "title" in str(exc.value) and "pages" in str(exc.value)
        with pytest.raises(FieldError) as exc:
            Book.objects.order_by("-nope")
        assert "Book" in str(exc.value) and "title" in str(exc.value)
        with pytest.raises(FieldError) as exc:
            Book.objects.values("nope")
        assert "Book" in str(exc.value) and "title" in str(exc.value)
        with pytest.raises(FieldError) as exc:
            Book.objects.values_list("title", "nope")
        assert "Book" in str(exc.value)
        with pytest.raises(FieldError) as exc:
            Book.objects.filter(author__nope="x")
        assert "Author" in str(exc.value) and "name" in str(exc.value)
        with pytest.raises(FieldError) as exc:
            Book.objects.order_by("author__nope")
        assert "Author" in str(exc.value) and "name" in str(exc.value)
        with pytest.raises(FieldError) as exc:
            Book.objects.exclude(nope__gt=1)
        assert "Book" in str(exc.value)
        with pytest.raises(FieldError) as exc:
            Book.objects.annotate(x=dorm.Count("nope"))
        assert "Book" in str(exc.value)
        with pytest.raises(FieldError) as exc:
            Book.objects.filter(title__bogus="x")
        message = str(exc.value)
        assert "Book.title" in message and "'bogus'" in message
        assert "Known lookups" in message and "icontains" in message and "exact" in message
    assert len(ctx) == 0


# -- select_for_update ---------------------------------------------------------------------------


def test_select_for_update_requires_atomic(library) -> None:
    qs = Book.objects.select_for_update()
    with pytest.raises(TransactionManagementError, match="atomic"):
        list(qs)
    with transaction.atomic(), CaptureQueriesContext() as ctx:
        assert len(list(Book.objects.select_for_update().filter(author__name="Ada"))) == 2
    if db_vendor() == "postgresql":
        assert "FOR UPDATE" in ctx[0]["sql"]
    with pytest.raises(ValueError, match="exclusive"):
        Book.objects.select_for_update(nowait=True, skip_locked=True)


def _in_thread(fn):
    """Run ``fn`` in another thread (its own connection); return its result or raise its error."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    assert not t.is_alive(), "the other thread is still blocked"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("result")


def test_select_for_update_locks_rows_on_postgresql(library) -> None:
    if db_vendor() != "postgresql":
        pytest.skip("row locks are PostgreSQL-only")
    alpha = library["Alpha"]

    def skip_locked() -> list[str]:
        with transaction.atomic():
            qs = Book.objects.select_for_update(skip_locked=True).filter(author__name="Ada")
            return sorted(b.title for b in qs)

    def nowait() -> None:
        with transaction.atomic():
            list(Book.objects.select_for_update(nowait=True).filter(pk=alpha.pk))

    def plain_read() -> str:
        return Book.objects.get(pk=alpha.pk).title

    with transaction.atomic():
        locked = Book.objects.select_for_update().get(pk=alpha.pk)
        assert locked.title == "Alpha"
        assert _in_thread(skip_locked) == ["Beta"]
        with pytest.raises(OperationalError) as exc:
            _in_thread(nowait)
        assert "lock" in str(exc.value).lower()
        # Readers are not blocked by FOR UPDATE.
        assert _in_thread(plain_read) == "Alpha"
    # Once the transaction ends the lock is gone.
    assert _in_thread(skip_locked) == ["Alpha", "Beta"]
    _in_thread(nowait)


# -- datetimes ------------------------------------------------------------------------------------


def test_iteration_of_datetimes_is_aware_utc(db) -> None:
    at = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    Event.objects.create(name="e", at=at)
    assert Event.objects.get().at == at
    assert Event.objects.values_list("at", flat=True).get() == at
    assert Event.objects.aggregate(m=dorm.Max("at"))["m"] == at
    assert Event.objects.latest("at").name == "e"


def test_sqlite_datetimes_stored_in_other_text_forms_read_back_aware(db) -> None:
    """dorm writes "YYYY-MM-DD HH:MM:SS.ffffff" (UTC) and reads that form through a fast
    path; text another program stored, with or without an offset, still reads right."""
    if db_vendor() != "sqlite":
        pytest.skip("PostgreSQL keeps timestamptz, not text")
    table = Event._meta.db_table
    stored = {
        "dorm": "2024-05-06 07:08:09.123456",
        "offset26": "2024-05-06T09:08:09.1+0200",  # 26 characters, with an offset
        "offset": "2024-05-06 09:08:09.123456+02:00",
        "seconds": "2024-05-06 07:08:09",
    }
    for name, text in stored.items():
        get_connection().execute(f'INSERT INTO "{table}" (name, at) VALUES (?, ?)', [name, text])
    got = dict(Event.objects.values_list("name", "at"))
    assert got == {
        "dorm": datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        "offset26": datetime.datetime(2024, 5, 6, 7, 8, 9, 100000, tzinfo=UTC),
        "offset": datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        "seconds": datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
    }
    assert all(value.tzinfo is UTC for value in got.values())


def test_meta_ordering_does_not_split_groups(db) -> None:
    Score.objects.bulk_create(
        [Score(player="a", points=1), Score(player="a", points=5), Score(player="b", points=2)]
    )
    rows = list(Score.objects.values("player").annotate(total=dorm.Sum("points")))
    assert sorted(rows, key=lambda r: r["player"]) == [
        {"player": "a", "total": 6},
        {"player": "b", "total": 2},
    ]
    assert list(Score.objects.values_list("points", flat=True)) == [1, 2, 5]
    assert list(Score.objects.reverse().values_list("points", flat=True)) == [5, 2, 1]
    assert Score.objects.values("player").distinct().count() == 2


def test_sliced_writes_and_misc_guards(library) -> None:
    with pytest.raises(TypeError, match="slice"):
        Book.objects.all()[:2].update(pages=1)
    with pytest.raises(TypeError, match="values"):
        Book.objects.values("title").delete()
    with pytest.raises(TypeError, match="update"):
        Book.objects.update()
    assert Book.objects.order_by("pages")[1:3].count() == 2
    assert Book.objects.order_by("pages")[3:].count() == 2
    assert Book.objects.order_by("pages")[4:].exists() is True
    assert Book.objects.order_by("pages")[5:].exists() is False
    assert Book.objects.none().filter(pages=1).count() == 0
    assert sorted(titles(Book.objects.none() | Book.objects.filter(title="Beta"))) == ["Beta"]
    assert repr(Book.objects.filter(title="Beta")).startswith("<QuerySet [<Book")
    assert Book.objects.filter(title="Beta").values("title").first() == {"title": "Beta"}


def test_union_count_and_values(library) -> None:
    u = Book.objects.filter(pages__lt=100).union(Book.objects.filter(pages__gt=300))
    assert u.count() == 2
    assert u.exists() is True
    named = (
        Book.objects.filter(title="Alpha")
        .values_list("title", "pages", named=True)
        .union(Book.objects.filter(title="Beta").values_list("title", "pages", named=True))
        .order_by("pages")
    )
    assert [(r.title, r.pages) for r in named] == [("Alpha", 100), ("Beta", 200)]
    vals = (
        Book.objects.filter(title="Alpha")
        .values("title")
        .union(Book.objects.filter(title="Eps").values("title"))
        .order_by("title")
    )
    assert list(vals) == [{"title": "Alpha"}, {"title": "Eps"}]
    assert titles(u.order_by("-pages")[:1]) == ["Delta"]


def test_select_related_with_only_and_iterator(library) -> None:
    with assertNumQueries(1):
        book = (
            Book.objects.select_related("author").only("title", "author__name").get(title="Gamma")
        )
        assert book.author.name == "Bob"
        assert book.title == "Gamma"
    with CaptureQueriesContext() as ctx:
        got = [
            (b.title, b.author.name)
            for b in Book.objects.select_related("author").order_by("pages").iterator(2)
        ]
    assert got[0] == ("Eps", "Cy") and len(got) == 5
    assert len([q for q in ctx.captured_queries if q["sql"].startswith("SELECT")]) == 1
