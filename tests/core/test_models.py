"""Models on both backends: ``_meta``, Meta options, inheritance, managers and instance methods."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

import dorm
from dorm import exceptions
from dorm.db.connection import get_connection
from dorm.exceptions import ImproperlyConfigured, IntegrityError, ValidationError
from dorm.models.fields import NOT_PROVIDED
from dorm.test import assertNumQueries

APP = "t_models"


def even(value: Any) -> None:
    if value % 2:
        raise ValidationError(f"{value} is not even")


class Stamped(dorm.Model):
    """Abstract: its fields and Meta are copied into each child."""

    label = dorm.CharField(max_length=30, default="unlabelled")
    rank = dorm.IntegerField(default=0)

    class Meta:
        abstract = True
        app_label = APP
        ordering = ["-rank"]


class Note(Stamped):
    body = dorm.TextField(blank=True)


class Memo(Stamped):
    title = dorm.CharField(max_length=20)

    class Meta(Stamped.Meta):
        db_table = "t_models_custom_memo"


class Dated(dorm.Model):
    when = dorm.DateTimeField(null=True)

    class Meta:
        abstract = True
        app_label = APP


class Deadline(Dated):
    class Meta:
        app_label = APP


class Person(dorm.Model):
    first = dorm.CharField(max_length=30)
    last = dorm.CharField(max_length=30)
    age = dorm.IntegerField(default=0, validators=[even])
    status = dorm.CharField(max_length=1, choices=[("a", "Active"), ("i", "Inactive")], default="a")
    nick = dorm.CharField(max_length=10, blank=True, null=True)

    class Meta:
        app_label = APP
        ordering = ["last", "-first"]
        unique_together = [("first", "last")]


class Account(dorm.Model):
    code = dorm.CharField(max_length=10)
    region = dorm.CharField(max_length=10)
    balance = dorm.IntegerField(default=0)
    active = dorm.BooleanField(default=True)

    class Meta:
        app_label = APP
        indexes = [dorm.Index(fields=["region", "-balance"], name="t_models_acct_region_idx")]
        constraints = [
            dorm.CheckConstraint(
                condition=dorm.Q(balance__gte=0), name="t_models_acct_balance_nonneg"
            ),
            dorm.UniqueConstraint(fields=["code", "region"], name="t_models_acct_code_region"),
            dorm.UniqueConstraint(
                fields=["code"], condition=dorm.Q(active=True), name="t_models_acct_active_code"
            ),
        ]


class ActiveManager(dorm.Manager):
    def get_queryset(self) -> Any:
        return super().get_queryset().filter(active=True)


class Gadget(dorm.Model):
    name = dorm.CharField(max_length=20, unique=True)
    active = dorm.BooleanField(default=True)

    objects = dorm.Manager()
    live = ActiveManager()

    class Meta:
        app_label = APP

    def __str__(self) -> str:
        return self.name


class Widget(dorm.Model):
    """Only a custom manager: no automatic ``objects``."""

    name = dorm.CharField(max_length=20)
    active = dorm.BooleanField(default=True)

    live = ActiveManager()

    class Meta:
        app_label = APP


MODELS = [Note, Memo, Person, Account, Gadget, Widget]
pytestmark = pytest.mark.usefixtures("clean_tables")


def raw_execute(sql: str, params: tuple[Any, ...] = ()) -> int:
    """Run ``sql`` written with ``%s`` placeholders on the default connection."""
    conn = get_connection()
    return conn.execute(sql.replace("%s", conn.ops.placeholder), params)


def raw_fetchone(sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    conn = get_connection()
    return conn.fetchone(sql.replace("%s", conn.ops.placeholder), params)


def index_names(table: str, vendor: str) -> set[str]:
    if vendor == "sqlite":
        rows = get_connection().fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (table,)
        )
    else:
        rows = get_connection().fetchall(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s", (table,)
        )
    return {r[0] for r in rows}


# -- _meta ----------------------------------------------------------------------------------------


def test_meta_fields_pk_and_default_db_table(db) -> None:
    opts = Person._meta
    assert [f.name for f in opts.fields] == ["id", "first", "last", "age", "status", "nick"]
    assert opts.pk.name == "id" and isinstance(opts.pk, dorm.BigAutoField)
    assert opts.db_table == "t_models_person"
    assert opts.label == "t_models.Person"
    assert opts.get_field("first") is Person._meta.fields[1]
    with pytest.raises(exceptions.FieldDoesNotExist, match="'nope'"):
        opts.get_field("nope")
    assert {"t_models_person", "t_models_custom_memo", "t_models_note"} <= set(
        get_connection().table_names()
    )
    p = Person.objects.create(first="Ada", last="Lovelace")
    assert raw_fetchone('SELECT "first" FROM "t_models_person" WHERE "id" = %s', (p.pk,)) == (
        "Ada",
    )


def test_meta_ordering_applies_by_default_and_order_by_overrides(db) -> None:
    for first, last in [("b", "Y"), ("a", "Z"), ("c", "Y"), ("a", "X")]:
        Person.objects.create(first=first, last=last)
    assert [(p.first, p.last) for p in Person.objects.all()] == [
        ("a", "X"),
        ("c", "Y"),
        ("b", "Y"),
        ("a", "Z"),
    ]
    assert [p.first for p in Person.objects.filter(last="Y")] == ["c", "b"]
    assert list(Person.objects.order_by("first", "last").values_list("last", flat=True)) == [
        "X",
        "Z",
        "Y",
        "Y",
    ]
    assert Person.objects.first().last == "X"
    assert Person.objects.last().last == "Z"


def test_unique_together_enforced_by_database_and_validate_unique(db) -> None:
    Person.objects.create(first="Ada", last="Lovelace")
    Person.objects.create(first="Ada", last="Byron")
    dup = Person(first="Ada", last="Lovelace")
    with pytest.raises(ValidationError) as info:
        dup.validate_unique()
    assert list(info.value.message_dict) == ["__all__"]
    assert "first and last" in info.value.message_dict["__all__"][0]
    with pytest.raises(IntegrityError):
        dup.save()
    assert Person.objects.filter(first="Ada").count() == 2
    # Saving an existing row again does not conflict with itself.
    existing = Person.objects.get(last="Lovelace")
    existing.validate_unique()
    existing.full_clean()


def test_check_constraint_exists_in_database(db) -> None:
    Account.objects.create(code="a", region="eu", balance=0)
    with pytest.raises(IntegrityError, match="t_models_acct_balance_nonneg|CHECK"):
        Account.objects.create(code="b", region="eu", balance=-1)
    with pytest.raises(IntegrityError):
        raw_execute('UPDATE "t_models_account" SET "balance" = %s WHERE "code" = %s', (-5, "a"))
    assert Account.objects.get(code="a").balance == 0


def test_unique_constraint_exists_in_database_and_in_validate_unique(db) -> None:
    Account.objects.create(code="a", region="eu")
    Account.objects.create(code="a", region="us", active=False)
    with pytest.raises(IntegrityError):
        Account.objects.create(code="a", region="eu", active=False)
    dup = Account(code="a", region="eu", active=False)
    with pytest.raises(ValidationError) as info:
        dup.full_clean()
    assert "code and region" in info.value.message_dict["__all__"][0]
    assert Account.objects.count() == 2


def test_conditional_unique_constraint_is_partial(db) -> None:
    Account.objects.create(code="x", region="eu", active=False)
    Account.objects.create(code="x", region="us", active=False)
    Account.objects.create(code="x", region="asia", active=True)
    with pytest.raises(IntegrityError):
        Account.objects.create(code="x", region="africa", active=True)
    assert sorted(Account.objects.filter(code="x").values_list("region", flat=True)) == [
        "asia",
        "eu",
        "us",
    ]


def test_meta_indexes_exist_in_database(db) -> None:
    assert "t_models_acct_region_idx" in index_names("t_models_account", db.vendor)
    assert "t_models_acct_active_code" in index_names("t_models_account", db.vendor)


def test_unknown_meta_option_is_improperly_configured(db) -> None:
    with pytest.raises(ImproperlyConfigured, match="'colour'"):

        class Bad(dorm.Model):
            name = dorm.CharField(max_length=5)

            class Meta:
                app_label = "t_models_bad"
                colour = "red"


def test_unique_together_naming_unknown_field_is_rejected(db) -> None:
    with pytest.raises(exceptions.FieldDoesNotExist, match="'missing'"):

        class Bad(dorm.Model):
            name = dorm.CharField(max_length=5)

            class Meta:
                app_label = "t_models_bad2"
                unique_together = [("name", "missing")]


# -- abstract inheritance ---------------------------------------------------------------------


def test_abstract_fields_and_meta_copied_each_child_own_table(db) -> None:
    assert [f.name for f in Note._meta.fields] == ["id", "label", "rank", "body"]
    assert [f.name for f in Memo._meta.fields] == ["id", "label", "rank", "title"]
    # Each child has its own copy of the inherited field.
    assert Note._meta.get_field("label") is not Memo._meta.get_field("label")
    assert Note._meta.get_field("label").model is Note
    assert Note._meta.db_table == "t_models_note"
    assert Memo._meta.db_table == "t_models_custom_memo"
    assert Note._meta.ordering == ["-rank"] and Memo._meta.ordering == ["-rank"]
    assert not Note._meta.abstract and Stamped._meta.abstract
    for rank in (1, 3, 2):
        Note.objects.create(rank=rank, body=f"n{rank}")
    Memo.objects.create(title="only", label="m")
    assert [n.rank for n in Note.objects.all()] == [3, 2, 1]
    assert Note.objects.first().label == "unlabelled"
    assert Memo.objects.count() == 1 and Note.objects.count() == 3
    assert raw_fetchone('SELECT COUNT(*) FROM "t_models_custom_memo"') == (1,)
    assert "t_models_stamped" not in get_connection().table_names()


def test_abstract_model_cannot_be_instantiated_or_queried(db) -> None:
    with pytest.raises(TypeError, match="Stamped is abstract"):
        Stamped(label="x")
    assert not hasattr(Stamped, "objects")


def test_inherited_field_without_default_has_none(db) -> None:
    # Fields of an abstract parent are deep-copied into each child: the copy must keep
    # "no default" (the NOT_PROVIDED sentinel), not turn it into an explicit default.
    assert not Memo._meta.get_field("title").has_default()
    assert "default" not in Memo._meta.get_field("title").deconstruct()[3]
    assert not Deadline._meta.get_field("when").has_default()
    assert Deadline(when=None).when is None
    assert copy.deepcopy(NOT_PROVIDED) is NOT_PROVIDED
    assert pickle.loads(pickle.dumps(NOT_PROVIDED)) is NOT_PROVIDED


def test_child_exceptions_are_distinct(db) -> None:
    assert issubclass(Note.DoesNotExist, exceptions.ObjectDoesNotExist)
    assert issubclass(Memo.DoesNotExist, exceptions.ObjectDoesNotExist)
    assert Note.DoesNotExist is not Memo.DoesNotExist
    assert not issubclass(Note.DoesNotExist, Memo.DoesNotExist)


# -- managers -----------------------------------------------------------------------------------


def test_default_manager_is_objects(db) -> None:
    assert isinstance(Person.objects, dorm.Manager)
    assert Person._default_manager is Person.objects
    Person.objects.create(first="a", last="b")
    with pytest.raises(AttributeError, match="Person.objects"):
        Person.objects.get().objects  # noqa: B018


def test_custom_managers(db) -> None:
    Gadget.objects.create(name="on")
    Gadget.objects.create(name="off", active=False)
    assert sorted(g.name for g in Gadget.objects.all()) == ["off", "on"]
    assert [g.name for g in Gadget.live.all()] == ["on"]
    assert Gadget.live.count() == 1
    assert Gadget._default_manager is Gadget.objects
    with pytest.raises(Gadget.DoesNotExist):
        Gadget.live.get(name="off")


def test_model_with_only_custom_manager_has_no_objects(db) -> None:
    assert not hasattr(Widget, "objects")
    assert Widget._default_manager is Widget.live
    Widget(name="a").save()
    Widget(name="b", active=False).save()
    assert [w.name for w in Widget.live.all()] == ["a"]
    assert raw_fetchone('SELECT COUNT(*) FROM "t_models_widget"') == (2,)
    # Base manager sees every row (used by refresh_from_db and save).
    hidden = Widget._base_manager.get(name="b")
    hidden.refresh_from_db()
    assert hidden.active is False


# -- save ---------------------------------------------------------------------------------------


def test_save_inserts_then_updates(db) -> None:
    p = Person(first="Ada", last="Lovelace", age=36)
    assert p.pk is None and p._state.adding
    p.save()
    assert isinstance(p.pk, int) and not p._state.adding
    p.age = 38
    p.save()
    assert Person.objects.count() == 1
    assert raw_fetchone('SELECT "age" FROM "t_models_person" WHERE "id" = %s', (p.pk,)) == (38,)


def test_save_with_explicit_pk_inserts_row(db) -> None:
    Person(id=1000, first="a", last="b").save()
    assert raw_fetchone('SELECT "first" FROM "t_models_person" WHERE "id" = %s', (1000,)) == ("a",)
    Person(id=1000, first="c", last="d").save()  # same pk: an UPDATE
    assert Person.objects.get(pk=1000).first == "c" and Person.objects.count() == 1


def test_save_update_fields_writes_only_those_columns(db) -> None:
    p = Person.objects.create(first="Ada", last="Lovelace", age=10)
    raw_execute('UPDATE "t_models_person" SET "age" = %s WHERE "id" = %s', (99, p.pk))
    p.first = "Augusta"
    p.save(update_fields=["first"])
    assert raw_fetchone(
        'SELECT "first", "age" FROM "t_models_person" WHERE "id" = %s', (p.pk,)
    ) == ("Augusta", 99)
    # A plain save writes every column, so the stale age comes back.
    p.save()
    assert Person.objects.get(pk=p.pk).age == 10


def test_save_update_fields_validation(db) -> None:
    p = Person.objects.create(first="a", last="b")
    with pytest.raises(ValueError, match="'bogus'"):
        p.save(update_fields=["bogus"])
    with assertNumQueries(0):
        p.save(update_fields=[])
    unsaved = Person(id=4242, first="x", last="y")
    with pytest.raises(exceptions.DatabaseError, match="update_fields"):
        unsaved.save(update_fields=["first"])
    assert not Person.objects.filter(pk=4242).exists()


def test_force_insert_and_force_update(db) -> None:
    p = Person.objects.create(first="a", last="b")
    clone = Person(id=p.pk, first="c", last="d")
    with pytest.raises(IntegrityError):
        clone.save(force_insert=True)
    ghost = Person(id=p.pk + 100, first="g", last="h")
    with pytest.raises(exceptions.DatabaseError, match="force_update"):
        ghost.save(force_update=True)
    assert not Person.objects.filter(pk=p.pk + 100).exists()
    with pytest.raises(ValueError, match="force_update"):
        Person(first="n", last="o").save(force_update=True)
    with pytest.raises(ValueError, match="force_insert"):
        p.save(force_insert=True, force_update=True)
    p.first = "z"
    p.save(force_update=True)
    assert Person.objects.get(pk=p.pk).first == "z"
    fresh = Person(id=p.pk + 200, first="f", last="i")
    fresh.save(force_insert=True)
    assert Person.objects.get(pk=p.pk + 200).first == "f"


# -- delete / refresh --------------------------------------------------------------------------


def test_delete_removes_row_and_reports_counts(db) -> None:
    keep = Person.objects.create(first="k", last="k")
    gone = Person.objects.create(first="g", last="g")
    pk = gone.pk
    assert gone.delete() == (1, {"t_models.Person": 1})
    assert gone.pk is None
    assert raw_fetchone('SELECT COUNT(*) FROM "t_models_person" WHERE "id" = %s', (pk,)) == (0,)
    assert list(Person.objects.values_list("pk", flat=True)) == [keep.pk]
    with pytest.raises(ValueError, match="primary key is None"):
        Person(first="x", last="y").delete()


def test_refresh_from_db_all_and_some_fields(db) -> None:
    p = Person.objects.create(first="Ada", last="Lovelace", age=2)
    raw_execute(
        'UPDATE "t_models_person" SET "age" = %s, "first" = %s WHERE "id" = %s', (4, "Aug", p.pk)
    )
    p.refresh_from_db(fields=["age"])
    assert p.age == 4 and p.first == "Ada"
    p.refresh_from_db()
    assert p.first == "Aug" and p.age == 4
    with pytest.raises(exceptions.FieldError, match="'nope'"):
        p.refresh_from_db(fields=["nope"])
    raw_execute('DELETE FROM "t_models_person" WHERE "id" = %s', (p.pk,))
    with pytest.raises(Person.DoesNotExist):
        p.refresh_from_db()
    with pytest.raises(ValueError, match="unsaved"):
        Person(first="a", last="b").refresh_from_db()


def test_deferred_fields_load_on_access(db) -> None:
    Person.objects.create(first="Ada", last="Lovelace", age=36)
    with assertNumQueries(1):
        p = Person.objects.only("first").get()
    assert "last" not in p.__dict__ and "age" not in p.__dict__
    with assertNumQueries(0):
        assert p.first == "Ada"
    with assertNumQueries(1):
        assert p.last == "Lovelace"
    with assertNumQueries(0):
        assert p.last == "Lovelace"
    d = Person.objects.defer("age").get()
    assert "age" not in d.__dict__ and d.first == "Ada"
    with assertNumQueries(1):
        assert d.age == 36
    # Saving an object with deferred fields does not clobber the unloaded columns.
    q = Person.objects.only("first").get()
    q.first = "Augusta"
    q.save()
    assert Person.objects.values_list("first", "last", "age").get() == ("Augusta", "Lovelace", 36)


# -- validation ---------------------------------------------------------------------------------


def test_full_clean_reports_every_field(db) -> None:
    p = Person(first="", last="x" * 31, age=3, status="z")
    with pytest.raises(ValidationError) as info:
        p.full_clean()
    errors = info.value.message_dict
    assert set(errors) == {"first", "last", "age", "status"}
    assert "blank" in errors["first"][0]
    assert "max_length 30" in errors["last"][0]
    assert "3 is not even" in errors["age"][0]
    assert "'z' is not a valid choice" in errors["status"][0]
    with pytest.raises(ValidationError) as info:
        p.full_clean(exclude=["first", "last", "status"])
    assert set(info.value.message_dict) == {"age"}
    Person(first="a", last="b", age=4, nick=None).full_clean()


def test_full_clean_runs_clean_and_validate_unique(db) -> None:
    class Checked(dorm.Model):
        lo = dorm.IntegerField()
        hi = dorm.IntegerField()

        class Meta:
            app_label = "t_models_checked"

        def clean(self) -> None:
            if self.lo > self.hi:
                raise ValidationError("lo must not exceed hi")

    with pytest.raises(ValidationError) as info:
        Checked(lo=2, hi=1).full_clean()
    assert info.value.message_dict == {"__all__": ["lo must not exceed hi"]}
    Person.objects.create(first="a", last="b")
    with pytest.raises(ValidationError) as info:
        Person(first="a", last="b").full_clean()
    assert set(info.value.message_dict) == {"__all__"}
    Person(first="a", last="b").full_clean(validate_unique=False)


def test_validate_unique_on_unique_field(db) -> None:
    Gadget.objects.create(name="dup")
    with pytest.raises(ValidationError) as info:
        Gadget(name="dup").validate_unique()
    assert info.value.message_dict == {"name": ["Gadget with this name already exists"]}
    Gadget(name="dup").validate_unique(exclude=["name"])
    with pytest.raises(IntegrityError):
        Gadget.objects.create(name="dup")


def test_full_clean_converts_values(db) -> None:
    p = Person(first="a", last="b", age="4")
    p.full_clean()
    assert p.age == 4
    p.age = "four"
    with pytest.raises(ValidationError) as info:
        p.full_clean()
    assert list(info.value.message_dict) == ["age"]
    assert "Person.age" in info.value.message_dict["age"][0]


def test_get_field_display(db) -> None:
    p = Person.objects.create(first="a", last="b", status="i")
    assert Person.objects.get(pk=p.pk).get_status_display() == "Inactive"
    p.status = "a"
    assert p.get_status_display() == "Active"
    p.status = "?"
    assert p.get_status_display() == "?"
    assert not hasattr(p, "get_first_display")


# -- identity -----------------------------------------------------------------------------------


def test_equality_and_hash_follow_pk(db) -> None:
    a = Person.objects.create(first="a", last="b")
    again = Person.objects.get(pk=a.pk)
    other = Person.objects.create(first="c", last="d")
    assert a == again and hash(a) == hash(again)
    assert a != other
    assert len({a, again, other}) == 2
    note = Note.objects.create()
    note.pk = a.pk
    assert note != a  # same pk, different model
    unsaved, unsaved2 = Person(first="x", last="y"), Person(first="x", last="y")
    assert unsaved == unsaved and unsaved != unsaved2
    with pytest.raises(TypeError, match="unhashable"):
        hash(unsaved)
    assert a != "a"


def test_repr_and_str(db) -> None:
    p = Person.objects.create(first="a", last="b")
    assert repr(p) == f"<Person: Person object ({p.pk})>"
    assert str(p) == f"Person object ({p.pk})"
    assert repr(Person(first="x", last="y")) == "<Person: Person object (None)>"
    g = Gadget.objects.create(name="gizmo")
    assert repr(g) == "<Gadget: gizmo>"


def test_does_not_exist_and_multiple_objects_returned(db) -> None:
    assert issubclass(Person.DoesNotExist, exceptions.ObjectDoesNotExist)
    assert issubclass(Person.MultipleObjectsReturned, exceptions.MultipleObjectsReturned)
    assert Person.DoesNotExist is not Gadget.DoesNotExist
    with pytest.raises(Person.DoesNotExist, match="Person"):
        Person.objects.get(first="nobody")
    with pytest.raises(exceptions.ObjectDoesNotExist):
        Person.objects.get(first="nobody")
    Person.objects.create(first="a", last="b", age=2)
    Person.objects.create(first="c", last="d", age=2)
    with pytest.raises(Person.MultipleObjectsReturned, match="Person"):
        Person.objects.get(age=2)
    with pytest.raises(Gadget.DoesNotExist):
        Gadget.objects.get(name="nobody")
    try:
        Gadget.objects.get(name="nobody")
    except Person.DoesNotExist:  # pragma: no cover - must not be caught here
        pytest.fail("Gadget.DoesNotExist caught as Person.DoesNotExist")
    except Gadget.DoesNotExist:
        pass


def test_unknown_kwarg_is_type_error_naming_it(db) -> None:
    with pytest.raises(TypeError, match="'fist'"):
        Person(fist="a", last="b")
    with pytest.raises(TypeError, match="'colour'"):
        Person.objects.create(first="a", last="b", colour="red")
    assert Person.objects.count() == 0


def test_init_positional_args_and_defaults(db) -> None:
    p = Person(None, "Ada", "Lovelace", 4)
    assert (p.pk, p.first, p.last, p.age, p.status, p.nick) == (
        None,
        "Ada",
        "Lovelace",
        4,
        "a",
        None,
    )
    with pytest.raises(TypeError, match="'first'"):
        Person(None, "Ada", first="Ada")
    p.save()
    assert Person.objects.values_list("status", "age").get() == ("a", 4)


def test_save_update_fields_naming_a_deferred_field_keeps_its_value(db) -> None:
    Person.objects.create(first="Ada", last="Lovelace", age=36, nick="countess")
    p = Person.objects.only("first").get()
    p.save(update_fields=["nick", "age"])
    assert Person.objects.values_list("nick", "age").get() == ("countess", 36)
    p.first = "Augusta"
    p.save(update_fields=["first"])
    assert Person.objects.values_list("first", "nick").get() == ("Augusta", "countess")


def test_instance_state_and_pickle(db) -> None:
    import pickle

    p = Person.objects.create(first="a", last="b", age=2)
    assert p._state.db == "default" and not p._state.adding
    fetched = Person.objects.get(pk=p.pk)
    assert fetched._state.db == "default" and not fetched._state.adding
    clone = pickle.loads(pickle.dumps(fetched))
    assert clone == p and (clone.first, clone.age) == ("a", 2)
    assert not clone._state.adding
    clone.age = 6
    clone.save()
    assert Person.objects.count() == 1 and Person.objects.get().age == 6


def test_invalid_model_definitions(db) -> None:
    with pytest.raises(exceptions.FieldDoesNotExist, match="'missing'"):

        class BadIndex(dorm.Model):
            name = dorm.CharField(max_length=5)

            class Meta:
                app_label = "t_models_bad3"
                indexes = [dorm.Index(fields=["missing"], name="t_models_bad3_idx")]

    with pytest.raises(exceptions.FieldError, match="'missing'"):

        class BadOrdering(dorm.Model):
            name = dorm.CharField(max_length=5)

            class Meta:
                app_label = "t_models_bad4"
                ordering = ["-missing"]

    with pytest.raises(ImproperlyConfigured, match="two primary keys"):

        class TwoPks(dorm.Model):
            a = dorm.IntegerField(primary_key=True)
            b = dorm.IntegerField(primary_key=True)

            class Meta:
                app_label = "t_models_bad5"


def test_unique_together_single_tuple_is_normalised(db) -> None:
    class Pair(dorm.Model):
        a = dorm.IntegerField()
        b = dorm.IntegerField()

        class Meta:
            app_label = "t_models_pair"
            unique_together = ("a", "b")

    assert Pair._meta.unique_together == [("a", "b")]
    assert Person._meta.unique_together == [("first", "last")]


def test_pk_keyword_and_property_setters(db) -> None:
    p = Person(pk=77, first="a", last="b")
    assert p.id == 77
    p.save()
    assert Person.objects.get(id=77).first == "a"
    p.pk = 78
    assert p.id == 78


def test_loaded_instances_get_their_state_on_first_use(db: Any) -> None:
    """Rows built by a query carry only their alias until ``_state`` is read; then it is a
    ModelState like any other (saved, from that alias), once per instance."""
    from dorm.models.base import LOADED_FROM, ModelState

    Person.objects.create(first="ann", last="lee", age=30)
    (loaded,) = Person.objects.filter(first="ann")
    assert loaded.__dict__.get(LOADED_FROM) == "default"
    state = loaded._state
    assert isinstance(state, ModelState) and (state.db, state.adding) == ("default", False)
    assert loaded._state is state and LOADED_FROM not in loaded.__dict__
    twin = copy.copy(Person.objects.get(first="ann"))
    assert twin._state.db == "default" and twin._state is not state
    revived = pickle.loads(pickle.dumps(Person.objects.get(first="ann")))
    assert (revived._state.db, revived._state.adding, revived.first) == ("default", False, "ann")
    loaded.age = 32
    loaded.save()  # an UPDATE of the loaded row, not a second INSERT
    assert list(Person.objects.values_list("first", "age")) == [("ann", 32)]
