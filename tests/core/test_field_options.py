"""Django 4.2-5.2 field and Meta options on both backends: PositiveBigIntegerField,
PositiveSmallIntegerField, FilePathField, Meta.default_manager_name / base_manager_name."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm.db.connection import get_connection
from dorm.exceptions import (
    FieldError,
    ImproperlyConfigured,
    IntegrityError,
    NotSupportedError,
    ValidationError,
)
from dorm.functions import Lower, Now
from dorm.models.fields import DatabaseDefault


class Counter(dorm.Model):
    big = dorm.PositiveBigIntegerField(default=0)
    small = dorm.PositiveSmallIntegerField(default=0)
    script = dorm.FilePathField(path="/srv/scripts", match=r"\.py$", null=True)

    class Meta:
        app_label = "t_field_options"


class PublishedManager(dorm.Manager):
    def get_queryset(self) -> Any:
        return super().get_queryset().filter(published=True)


class Post(dorm.Model):
    title = dorm.CharField(max_length=20)
    published = dorm.BooleanField(default=False)
    objects = dorm.Manager()
    live = PublishedManager()

    class Meta:
        app_label = "t_field_options"
        default_manager_name = "live"
        base_manager_name = "live"


class Comment(dorm.Model):
    post = dorm.ForeignKey(Post, on_delete=dorm.CASCADE)

    class Meta:
        app_label = "t_field_options"


MODELS = [Counter, Post, Comment]
pytestmark = pytest.mark.usefixtures("clean_tables")


# --- positive integers ----------------------------------------------------------------------------


def test_positive_big_and_small_integers_hold_their_ranges(db) -> None:
    row = Counter.objects.create(big=2**63 - 1, small=2**15 - 1)
    fresh = Counter.objects.get(pk=row.pk)
    assert (fresh.big, fresh.small) == (2**63 - 1, 2**15 - 1)
    with pytest.raises(ValidationError, match=r"Counter\.small: 32768 is out of range"):
        Counter.objects.create(small=2**15)
    with pytest.raises(ValidationError, match="big: -1 is out of range"):
        Counter(big=-1).full_clean()
    assert Counter.objects.count() == 1


@pytest.mark.parametrize("column", ["big", "small"])
def test_the_database_checks_positive_integers_too(db, column: str) -> None:
    table = Counter._meta.db_table
    conn = get_connection()
    qn = conn.ops.quote_name
    with pytest.raises(IntegrityError):
        conn.execute(
            f"INSERT INTO {qn(table)} (big, small, script) VALUES "
            f"({-1 if column == 'big' else 0}, {-1 if column == 'small' else 0}, NULL)",
            (),
        )
    assert Counter.objects.count() == 0
    types = {f.name: f.db_type(conn) for f in Counter._meta.concrete_fields}
    assert types["big"].startswith("bigint") and types["small"].startswith("smallint")


# --- FilePathField --------------------------------------------------------------------------------


def test_file_path_field_lists_and_stores_paths(db, tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    for name in ("a.py", "b.txt", "jobs/c.py"):
        (tmp_path / name).write_text("")
    flat = dorm.FilePathField(path=str(tmp_path), match=r"\.py$")
    assert flat.list_paths() == [str(tmp_path / "a.py")]
    deep = dorm.FilePathField(path=lambda: str(tmp_path), match=r"\.py$", recursive=True)
    assert deep.list_paths() == [str(tmp_path / "a.py"), str(tmp_path / "jobs" / "c.py")]
    folders = dorm.FilePathField(path=str(tmp_path), allow_files=False, allow_folders=True)
    assert folders.list_paths() == [str(tmp_path / "jobs")]

    row = Counter.objects.create(script=str(tmp_path / "a.py"))
    assert Counter.objects.get(pk=row.pk).script == str(tmp_path / "a.py")
    field = Counter._meta.get_field("script")
    assert field.max_length == 100
    assert field.deconstruct()[1:] == (
        "dorm.FilePathField",
        [],
        {"null": True, "path": "/srv/scripts", "match": r"\.py$"},
    )
    with pytest.raises(ValidationError, match="longer than max_length 100"):
        field.clean("x" * 101, None)


def test_file_path_field_refuses_options_that_offer_nothing() -> None:
    with pytest.raises(ValueError, match="allow_files and allow_folders are both False"):
        dorm.FilePathField(path="/", allow_files=False)
    with pytest.raises(ValueError, match=r"match='\(' is not a regular expression"):
        dorm.FilePathField(path="/", match="(")


# --- default_manager_name / base_manager_name -----------------------------------------------------


def test_default_and_base_manager_names_pick_the_managers(db) -> None:
    draft = Post.objects.create(title="draft")
    live = Post.objects.create(title="live", published=True)
    assert Post._default_manager is Post.live
    assert Post._base_manager is Post.live
    assert [p.title for p in Post._default_manager.all()] == ["live"]
    # Related-object access goes through the base manager, as in Django.
    assert Comment.objects.create(post=live).post == live
    hidden = Comment.objects.create(post=draft)
    with pytest.raises(Post.DoesNotExist, match="Comment.post: no Post"):
        _ = Comment.objects.get(pk=hidden.pk).post
    assert Post.objects.count() == 2


def test_a_manager_name_that_names_no_manager_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"Meta\.default_manager_name = 'gone'"):

        class Broken(dorm.Model):
            class Meta:
                app_label = "t_field_options_broken"
                default_manager_name = "gone"


# --- db_comment / Meta.db_table_comment ------------------------------------------------------


def pg_comments(table: str) -> tuple[str | None, dict[str, str | None]]:
    """(table comment, {column: comment}) from PostgreSQL's catalog."""
    conn = get_connection()
    (table_comment,) = conn.fetchone("SELECT obj_description(%s::regclass, 'pg_class')", (table,))
    rows = conn.fetchall(
        "SELECT attname, col_description(attrelid, attnum) FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        (table,),
    )
    return table_comment, dict(rows)


def test_comments_go_to_the_catalog_or_a_note(db, caplog: pytest.LogCaptureFixture) -> None:
    from dorm.migrations.schema import SchemaEditor

    class Invoice(dorm.Model):
        total = dorm.IntegerField(db_comment="Total in cents; it's never negative")
        note = dorm.TextField(blank=True)

        class Meta:
            app_label = "t_field_options_comments"
            db_table_comment = "Invoices sent to customers"

    caplog.set_level("INFO", logger="dorm.migrations")
    with SchemaEditor() as editor:
        editor.create_model(Invoice)
    try:
        Invoice.objects.create(total=5)
        assert Invoice.objects.get().total == 5
        if db.vendor == "postgresql":
            table, columns = pg_comments("t_field_options_comments_invoice")
            assert table == "Invoices sent to customers"
            assert columns["total"] == "Total in cents; it's never negative"
            assert columns["note"] is None
            assert not [r for r in caplog.records if "kept in the model only" in r.message]
        else:
            (record,) = [r for r in caplog.records if "kept in the model only" in r.message]
            assert record.levelname == "INFO"
            assert record.getMessage().startswith(
                "t_field_options_comments_invoice: SQLite has no table or column comments"
            )
    finally:
        with SchemaEditor() as editor:
            editor.delete_model(Invoice)


def test_a_comment_that_is_not_text_is_refused() -> None:
    with pytest.raises(TypeError, match="IntegerField: db_comment must be a string, got 5"):
        dorm.IntegerField(db_comment=5)  # type: ignore[arg-type]
    with pytest.raises(ImproperlyConfigured, match=r"Meta\.db_table_comment must be a string"):

        class Bad(dorm.Model):
            class Meta:
                app_label = "t_field_options_bad"
                db_table_comment = ["x"]


# --- db_default -----------------------------------------------------------------------------------


class Ticket(dorm.Model):
    title = dorm.CharField(max_length=20)
    status = dorm.CharField(max_length=10, db_default="new")
    opened = dorm.DateTimeField(db_default=Now())
    code = dorm.CharField(max_length=10, db_default=Lower(dorm.Value("ABC")))
    weight = dorm.IntegerField(null=True, db_default=dorm.Value(7))

    class Meta:
        app_label = "t_field_options"


MODELS.append(Ticket)


def test_db_default_is_filled_by_the_database_and_read_back(db) -> None:
    ticket = Ticket(title="a")
    assert isinstance(ticket.status, DatabaseDefault)
    before = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=5)
    ticket.save()
    assert (ticket.status, ticket.code, ticket.weight) == ("new", "abc", 7)
    assert isinstance(ticket.opened, datetime.datetime) and ticket.opened >= before
    fresh = Ticket.objects.get(pk=ticket.pk)
    assert (fresh.status, fresh.code, fresh.weight, fresh.opened) == (
        "new",
        "abc",
        7,
        ticket.opened,
    )
    given = Ticket.objects.create(title="b", status="closed", weight=None)
    assert Ticket.objects.get(pk=given.pk).status == "closed"
    assert Ticket.objects.get(pk=given.pk).weight is None
    # Saving again does not write the default over the row.
    fresh.title = "a2"
    fresh.save()
    assert Ticket.objects.get(pk=ticket.pk).status == "new"


def test_db_default_with_bulk_create_and_raw_sql(db) -> None:
    made = Ticket.objects.bulk_create(
        [Ticket(title="x"), Ticket(title="y", status="open"), Ticket(title="z")]
    )
    assert [(t.title, t.status, t.code) for t in made] == [
        ("x", "new", "abc"),
        ("y", "open", "abc"),
        ("z", "new", "abc"),
    ]
    assert all(t.pk is not None for t in made)
    rows = Ticket.objects.order_by("title").values_list("title", "status")
    assert list(rows) == [("x", "new"), ("y", "open"), ("z", "new")]
    # The DEFAULT is the column's: a write that leaves it out gets it too.
    conn = get_connection()
    conn.execute(
        f"INSERT INTO {conn.ops.quote_name(Ticket._meta.db_table)} (title) VALUES ('raw')", ()
    )
    raw = Ticket.objects.get(title="raw")
    assert (raw.status, raw.code, raw.weight) == ("new", "abc", 7)


# --- UniqueConstraint(deferrable=, include=, nulls_distinct=) -------------------------------------


def _seat_model(**options: Any) -> Any:
    class Seat(dorm.Model):
        row = dorm.CharField(max_length=5)
        number = dorm.IntegerField(null=True)
        holder = dorm.CharField(max_length=20, default="")

        class Meta:
            app_label = f"t_unique_{abs(hash(tuple(sorted(options))))}"
            constraints = [
                dorm.UniqueConstraint(fields=["row", "number"], name="seat_uniq", **options)
            ]

    return Seat


@pytest.fixture
def seat_table(db: Any) -> Any:
    from dorm.apps import apps
    from dorm.migrations.schema import SchemaEditor

    made: list[Any] = []

    def make(**options: Any) -> Any:
        model = _seat_model(**options)
        with SchemaEditor() as editor:
            editor.create_model(model)
        made.append(model)
        return model

    yield make
    for model in made:
        with SchemaEditor() as editor:
            editor.delete_model(model)
        apps.clear(model._meta.app_label)


@pytest.mark.parametrize(
    "options",
    [
        {"deferrable": dorm.Deferrable.DEFERRED},
        {"include": ["holder"]},
        {"nulls_distinct": False},
    ],
    ids=["deferrable", "include", "nulls_distinct"],
)
def test_unique_options_are_postgresql_only(db, seat_table: Any, options: dict[str, Any]) -> None:
    from dorm import transaction

    if db.vendor == "sqlite":
        (option,) = options
        with pytest.raises(NotSupportedError, match=rf"'seat_uniq'.*: {option}= is not supported"):
            seat_table(**options)
        return
    seat = seat_table(**options)
    seat.objects.create(row="A", number=1)
    if "deferrable" in options:
        # Checked at COMMIT: a swap through a duplicate passes.
        with transaction.atomic():
            other = seat.objects.create(row="A", number=1, holder="dup")
            seat.objects.filter(pk=other.pk).update(number=2)
        assert sorted(seat.objects.values_list("number", flat=True)) == [1, 2]
        with pytest.raises(IntegrityError), transaction.atomic():
            seat.objects.create(row="A", number=1)
    elif "include" in options:
        with pytest.raises(IntegrityError):
            seat.objects.create(row="A", number=1)
        (definition,) = get_connection().fetchone(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index "
            "WHERE indexrelid = 'seat_uniq'::regclass",
            (),
        )
        assert "INCLUDE (holder)" in definition
    else:
        seat.objects.create(row="B", number=None)
        with pytest.raises(IntegrityError):
            seat.objects.create(row="B", number=None)
        with pytest.raises(ValidationError, match="already exists"):
            seat(row="B", number=None).validate_constraints()
    assert seat.objects.filter(row="A").count() >= 1


def test_unique_option_errors_name_the_constraint() -> None:
    with pytest.raises(ValueError, match="'u': a constraint with a condition cannot be deferred"):
        dorm.UniqueConstraint(
            fields=["a"], name="u", condition=dorm.Q(a=1), deferrable=dorm.Deferrable.DEFERRED
        )
    with pytest.raises(ValueError, match="'u': deferrable must be Deferrable.DEFERRED"):
        dorm.UniqueConstraint(fields=["a"], name="u", deferrable="deferred")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'u': include must be a list of field names"):
        dorm.UniqueConstraint(fields=["a"], name="u", include="b")


# --- GeneratedField -------------------------------------------------------------------------------


class Line(dorm.Model):
    price = dorm.IntegerField()
    quantity = dorm.IntegerField(default=1)
    total = dorm.GeneratedField(
        expression=dorm.F("price") * dorm.F("quantity"),
        output_field=dorm.IntegerField(),
        db_persist=True,
    )
    label = dorm.CharField(max_length=20, default="")
    slug = dorm.GeneratedField(
        expression=Lower("label"), output_field=dorm.CharField(max_length=20), db_persist=True
    )

    class Meta:
        app_label = "t_field_options"


MODELS.append(Line)


def test_generated_field_is_computed_by_the_database(db) -> None:
    line = Line.objects.create(price=3, quantity=4, label="Hello")
    assert (line.total, line.slug) == (12, "hello")  # read back with RETURNING
    line.quantity = 10
    line.save()
    assert line.total == 30  # forgotten by the UPDATE, reloaded on access
    assert Line.objects.get(pk=line.pk).total == 30
    assert list(Line.objects.filter(total__gt=20).values_list("slug", flat=True)) == ["hello"]
    made = Line.objects.bulk_create([Line(price=2, quantity=2), Line(price=5, label="X")])
    assert [(m.total, m.slug) for m in made] == [(4, ""), (5, "x")]
    Line.objects.filter(pk=made[0].pk).update(price=7)
    assert Line.objects.get(pk=made[0].pk).total == 14
    with pytest.raises(FieldError, match="Line.total is a GeneratedField"):
        Line.objects.bulk_update(made, ["total"])


def test_generated_field_arguments_and_vendor_limits(db) -> None:
    from dorm.migrations.schema import SchemaEditor

    with pytest.raises(TypeError, match="expression must be an expression"):
        dorm.GeneratedField(expression=5, output_field=dorm.IntegerField(), db_persist=True)
    with pytest.raises(TypeError, match="takes no default="):
        dorm.GeneratedField(
            expression=dorm.F("a"), output_field=dorm.IntegerField(), db_persist=True, default=1
        )

    class Virtual(dorm.Model):
        n = dorm.IntegerField()
        double = dorm.GeneratedField(
            expression=dorm.F("n") * 2, output_field=dorm.IntegerField(), db_persist=False
        )

        class Meta:
            app_label = "t_field_options_virtual"

    if db.vendor == "postgresql":
        with (
            pytest.raises(NotSupportedError, match="PostgreSQL has only stored generated"),
            SchemaEditor() as editor,
        ):
            editor.create_model(Virtual)
        return
    with SchemaEditor() as editor:
        editor.create_model(Virtual)
    try:
        assert Virtual.objects.create(n=21).double == 42
    finally:
        with SchemaEditor() as editor:
            editor.delete_model(Virtual)
