"""Django behaviours dorm matches, on both backends: None on a non-null ForeignKey, app labels
from the installed app's package, manual savepoints, nested durable blocks, DurationField
string forms, Field.validate/clean parameter names, ``settings.configure``."""

from __future__ import annotations

import datetime
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm import transaction
from dorm.apps import apps
from dorm.conf import settings
from dorm.exceptions import (
    ImproperlyConfigured,
    IntegrityError,
    TransactionManagementError,
    ValidationError,
)


class Writer(dorm.Model):
    name = dorm.CharField(max_length=50)

    class Meta:
        app_label = "t_semantics"


class Essay(dorm.Model):
    title = dorm.CharField(max_length=50)
    writer = dorm.ForeignKey(Writer, on_delete=dorm.CASCADE)
    reading_time = dorm.DurationField(null=True, blank=True)

    class Meta:
        app_label = "t_semantics"


MODELS = [Writer, Essay]
pytestmark = pytest.mark.usefixtures("clean_tables")


def writers() -> list[str]:
    return sorted(Writer.objects.values_list("name", flat=True))


# --- None on a non-null ForeignKey ------------------------------------------------------------


def test_none_on_a_non_null_foreign_key_is_accepted_then_refused_by_clean_and_db(db) -> None:
    camus = Writer.objects.create(name="Camus")
    essay = Essay.objects.create(title="Sisyphus", writer=camus)
    essay.writer = None
    assert essay.writer is None
    assert essay.writer_id is None
    with pytest.raises(ValidationError) as caught:
        essay.full_clean()
    assert caught.value.message_dict == {"writer": ["writer: this field cannot be null"]}
    with pytest.raises(IntegrityError):
        essay.save()
    assert Essay.objects.get(pk=essay.pk).writer_id == camus.pk
    # Assigning a writer again makes the instance valid and saveable.
    essay.writer = camus
    essay.full_clean()
    essay.save()
    assert Essay.objects.get(pk=essay.pk).writer == camus


def test_none_in_the_constructor_of_a_non_null_foreign_key(db) -> None:
    essay = Essay(title="orphan", writer=None)
    assert essay.writer_id is None
    with pytest.raises(IntegrityError):
        essay.save()
    assert Essay.objects.count() == 0


# --- app label from the installed app's package --------------------------------------------------


@pytest.fixture
def app_tree(tmp_path: Path, db: Any) -> Iterator[Path]:
    """A project with ``proj.shop`` (models in sub-packages) and ``blog``; settings and
    modules restored afterwards."""
    (tmp_path / "proj" / "shop" / "catalog").mkdir(parents=True)
    (tmp_path / "blog").mkdir()
    for package in ("proj", "proj/shop", "proj/shop/catalog", "blog"):
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "proj" / "shop" / "catalog" / "items.py").write_text(
        "import dorm\n\n\nclass Item(dorm.Model):\n    sku = dorm.CharField(max_length=20)\n"
    )
    (tmp_path / "blog" / "posts.py").write_text(
        "import dorm\n\n\nclass Post(dorm.Model):\n    title = dorm.CharField(max_length=20)\n"
    )
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in [m for m in sys.modules if m.split(".")[0] in ("proj", "blog")]:
        del sys.modules[name]
    apps.clear("shop")
    apps.clear("blog")
    dorm.configure(DATABASES={"default": db.settings})


def test_a_model_in_any_module_of_an_installed_app_takes_its_label(app_tree: Path, db) -> None:
    from dorm.migrations.schema import SchemaEditor

    dorm.configure(DATABASES={"default": db.settings}, INSTALLED_APPS=["proj.shop", "blog"])
    item_model = importlib.import_module("proj.shop.catalog.items").Item
    post_model = importlib.import_module("blog.posts").Post
    assert item_model._meta.app_label == "shop"
    assert item_model._meta.db_table == "shop_item"
    assert post_model._meta.label == "blog.Post"
    assert apps.get_model("shop.Item") is item_model
    with SchemaEditor() as editor:
        editor.create_model(item_model)
    try:
        item_model.objects.create(sku="A-1")
        assert db.count_rows("shop_item") == 1
    finally:
        with SchemaEditor() as editor:
            editor.delete_model(item_model)


def test_outside_installed_apps_the_module_name_still_decides(app_tree: Path, db) -> None:
    dorm.configure(DATABASES={"default": db.settings}, INSTALLED_APPS=["blog"])
    item_model = importlib.import_module("proj.shop.catalog.items").Item
    assert item_model._meta.app_label == "items"


# --- savepoint(), savepoint_commit(), savepoint_rollback() ----------------------------------------


def test_savepoint_rollback_undoes_only_what_ran_after_it(db) -> None:
    ran: list[str] = []
    with transaction.atomic():
        Writer.objects.create(name="kept")
        transaction.on_commit(lambda: ran.append("before"))
        sid = transaction.savepoint()
        assert isinstance(sid, str)
        Writer.objects.create(name="undone")
        transaction.on_commit(lambda: ran.append("after"))
        transaction.savepoint_rollback(sid)
        assert writers() == ["kept"]
        # The savepoint stays open: roll back to it a second time.
        Writer.objects.create(name="undone too")
        transaction.savepoint_rollback(sid)
        Writer.objects.create(name="late")
    assert writers() == ["kept", "late"]
    assert db.count_rows(Writer._meta.db_table) == 2
    assert ran == ["before"]


def test_savepoint_commit_keeps_the_work_and_forgets_the_savepoint(db) -> None:
    with transaction.atomic():
        sid = transaction.savepoint()
        Writer.objects.create(name="released")
        transaction.savepoint_commit(sid)
        with pytest.raises(TransactionManagementError, match=rf"no open savepoint '{sid}'"):
            transaction.savepoint_rollback(sid)
    assert writers() == ["released"]


def test_rolling_back_an_outer_savepoint_ends_the_inner_ones(db) -> None:
    with transaction.atomic():
        outer = transaction.savepoint()
        Writer.objects.create(name="a")
        inner = transaction.savepoint()
        Writer.objects.create(name="b")
        transaction.savepoint_rollback(outer)
        with pytest.raises(TransactionManagementError, match=str(inner)):
            transaction.savepoint_commit(inner)
        Writer.objects.create(name="c")
    assert writers() == ["c"]


def test_savepoints_inside_nested_atomic_blocks(db) -> None:
    with transaction.atomic():
        Writer.objects.create(name="outer")
        with transaction.atomic():
            sid = transaction.savepoint()
            Writer.objects.create(name="inner")
            transaction.savepoint_rollback(sid)
            Writer.objects.create(name="inner kept")
        # The block that made the savepoint has ended; the savepoint with it.
        with pytest.raises(TransactionManagementError, match="has ended"):
            transaction.savepoint_rollback(sid)
    assert writers() == ["inner kept", "outer"]


def test_savepoint_functions_outside_a_transaction_do_nothing(db) -> None:
    assert transaction.savepoint() is None
    transaction.savepoint_commit(None)
    transaction.savepoint_rollback(None)
    Writer.objects.create(name="autocommit")
    assert db.count_rows(Writer._meta.db_table) == 1


@pytest.mark.parametrize("bad", ["x; DROP TABLE t", "dorm_sp_", 7])
def test_a_savepoint_id_that_savepoint_did_not_return_is_refused(db, bad: Any) -> None:
    with transaction.atomic():
        Writer.objects.create(name="safe")
        with pytest.raises(ValueError, match=r"savepoint_rollback\(\): .* is not a savepoint id"):
            transaction.savepoint_rollback(bad)
    assert writers() == ["safe"]


# --- nested durable blocks ------------------------------------------------------------------------


def test_a_nested_durable_block_raises_runtime_error_with_djangos_message(db) -> None:
    message = "A durable atomic block cannot be nested within another atomic block."
    with pytest.raises(RuntimeError) as caught, transaction.atomic():
        Writer.objects.create(name="outer")
        with transaction.atomic(durable=True):
            Writer.objects.create(name="never")
    assert str(caught.value) == message
    assert isinstance(caught.value, TransactionManagementError)
    assert writers() == []


# --- DurationField's string forms ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:00:05", datetime.timedelta(seconds=5)),
        ("1 00:00:05", datetime.timedelta(days=1, seconds=5)),
        ("2 days, 03:04:05.5", datetime.timedelta(days=2, hours=3, minutes=4, seconds=5.5)),
        ("-1 day, 23:59:59", datetime.timedelta(seconds=-1)),
        ("3 days 04:05:06", datetime.timedelta(days=3, hours=4, minutes=5, seconds=6)),
        ("10:15", datetime.timedelta(minutes=10, seconds=15)),
        ("30", datetime.timedelta(seconds=30)),
        ("-00:00:01.25", datetime.timedelta(seconds=-1.25)),
        ("P1DT2H", datetime.timedelta(days=1, hours=2)),
        ("PT5M30S", datetime.timedelta(minutes=5, seconds=30)),
        ("P2W", datetime.timedelta(weeks=2)),
        ("-PT1.5S", datetime.timedelta(seconds=-1.5)),
    ],
)
def test_duration_strings_are_parsed_and_stored(
    db, text: str, expected: datetime.timedelta
) -> None:
    field = Essay._meta.get_field("reading_time")
    assert field.to_python(text) == expected
    writer = Writer.objects.create(name="w")
    essay = Essay.objects.create(title="t", writer=writer, reading_time=text)
    assert Essay.objects.get(pk=essay.pk).reading_time == expected
    assert Essay.objects.filter(reading_time=text).count() == 1


@pytest.mark.parametrize("text", ["five seconds", "P", "PT", "P1Y", "1:2:3:4", ""])
def test_a_bad_duration_string_names_the_field_and_the_forms(db, text: str) -> None:
    field = Essay._meta.get_field("reading_time")
    with pytest.raises(ValidationError, match=r"Essay\.reading_time: .* is not a timedelta"):
        field.to_python(text)


# --- Field.validate / Field.clean parameter names -------------------------------------------------


def test_validate_and_clean_take_model_instance_by_keyword(db) -> None:
    writer = Writer.objects.create(name="kw")
    essay = Essay(title="t", writer=writer)
    title = Essay._meta.get_field("title")
    assert title.clean(value=12, model_instance=essay) == "12"
    title.validate(value="ok", model_instance=essay)
    fk = Essay._meta.get_field("writer")
    fk.validate(writer.pk, model_instance=essay)
    with pytest.raises(ValidationError, match="cannot be null"):
        fk.clean(None, model_instance=essay)
    duration = Essay._meta.get_field("reading_time")
    assert duration.clean("P1D", model_instance=essay) == datetime.timedelta(days=1)


# --- settings.configure ---------------------------------------------------------------------------


def test_settings_configure_is_an_alias_of_dorm_configure(db) -> None:
    result = settings.configure(DATABASES={"default": db.settings}, INSTALLED_APPS=[])
    assert result is settings is dorm.conf.settings
    assert settings.DATABASES["default"]["NAME"] == db.settings["NAME"]
    Writer.objects.create(name="configured")
    assert db.count_rows(Writer._meta.db_table) == 1
    with pytest.raises(ImproperlyConfigured, match="INSTALLED_APPS must be a list"):
        settings.configure(DATABASES={"default": db.settings}, INSTALLED_APPS="blog")
    dorm.configure(DATABASES={"default": db.settings})
    assert writers() == ["configured"]
