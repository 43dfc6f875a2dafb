"""The autodetector: which operations turn one ProjectState into another, in which order."""

from __future__ import annotations

from typing import Any

import dorm
from dorm.apps import Apps
from dorm.migrations import operations as ops
from dorm.migrations.autodetector import MigrationAutodetector
from dorm.migrations.state import ModelState, ProjectState
from dorm.migrations.writer import MigrationWriter


def model(
    registry: Apps,
    model_name: str,
    /,
    app: str = "shop",
    meta: dict[str, Any] | None = None,
    **fields: Any,
) -> type[dorm.Model]:
    """Define a model in ``registry`` (never the global one)."""
    attrs: dict[str, Any] = {
        "Meta": type("Meta", (), {"apps": registry, "app_label": app, **(meta or {})}),
        "__module__": __name__,
        **fields,
    }
    return type(model_name, (dorm.Model,), attrs)


def state(*models: type[dorm.Model]) -> ProjectState:
    return ProjectState(
        {(m._meta.app_label, m._meta.model_name): ModelState.from_model(m) for m in models}
    )


def changes(before: ProjectState, after: ProjectState, **kwargs: Any) -> dict[str, list[Any]]:
    return MigrationAutodetector(before, after).changes(**kwargs)


def summary(operations: list[Any]) -> list[tuple[Any, ...]]:
    """``(OperationName, model, name...)`` for each operation, fields left out."""
    shown = []
    for operation in operations:
        _path, args, kwargs = operation.deconstruct()
        simple = [v for v in [*args, *kwargs.values()] if isinstance(v, str)]
        shown.append((type(operation).__name__, *simple))
    return shown


def author(registry: Apps, **extra: Any) -> type[dorm.Model]:
    return model(registry, "Author", name=dorm.CharField(max_length=50), **extra)


# -- models ----------------------------------------------------------------------------------------


def test_no_changes_between_equal_states() -> None:
    assert changes(state(author(Apps())), state(author(Apps()))) == {}


def test_create_and_delete_model() -> None:
    new = state(author(Apps()))
    created = changes(ProjectState(), new)
    assert summary(created["shop"]) == [("CreateModel", "Author")]
    fields = created["shop"][0].fields
    assert [name for name, _f in fields] == ["id", "name"]
    assert fields[1][1].deconstruct()[1:] == ("dorm.CharField", [], {"max_length": 50})
    assert summary(changes(new, ProjectState())["shop"]) == [("DeleteModel", "Author")]


def test_create_model_keeps_its_options() -> None:
    registry = Apps()
    index = dorm.Index(fields=["name"], name="author_name_idx")
    created = model(
        registry,
        "Author",
        meta={"ordering": ["name"], "indexes": [index], "unique_together": [("name", "email")]},
        name=dorm.CharField(max_length=50),
        email=dorm.EmailField(),
    )
    (operation,) = changes(ProjectState(), state(created))["shop"]
    assert operation.options == {
        "ordering": ["name"],
        "indexes": [index],
        "unique_together": [("name", "email")],
    }


def test_rename_model_when_the_fields_are_identical() -> None:
    old = author(Apps())
    new = model(Apps(), "Writer", name=dorm.CharField(max_length=50))
    assert summary(changes(state(old), state(new))["shop"]) == [("RenameModel", "Author", "Writer")]


def test_rename_model_updates_the_foreign_keys_pointing_at_it() -> None:
    before = Apps()
    old = [
        author(before),
        model(before, "Book", author=dorm.ForeignKey("Author", on_delete=dorm.CASCADE)),
    ]
    after = Apps()
    new = [
        model(after, "Writer", name=dorm.CharField(max_length=50)),
        model(after, "Book", author=dorm.ForeignKey("Writer", on_delete=dorm.CASCADE)),
    ]
    assert summary(changes(state(*old), state(*new))["shop"]) == [
        ("RenameModel", "Author", "Writer")
    ]


def test_no_rename_model_when_two_candidates_match() -> None:
    before, after = Apps(), Apps()
    old = [author(before), model(before, "Poet", name=dorm.CharField(max_length=50))]
    new = [model(after, "Writer", name=dorm.CharField(max_length=50))]
    assert summary(changes(state(*old), state(*new))["shop"]) == [
        ("CreateModel", "Writer"),
        ("DeleteModel", "Author"),
        ("DeleteModel", "Poet"),
    ]


# -- fields ----------------------------------------------------------------------------------------


def test_add_remove_and_alter_field() -> None:
    old = model(
        Apps(), "Author", name=dorm.CharField(max_length=50), age=dorm.IntegerField(null=True)
    )
    new = model(
        Apps(), "Author", name=dorm.CharField(max_length=80), email=dorm.EmailField(default="")
    )
    found = changes(state(old), state(new))["shop"]
    assert summary(found) == [
        ("RemoveField", "Author", "age"),
        ("AddField", "Author", "email"),
        ("AlterField", "Author", "name"),
    ]
    assert found[2].field.max_length == 80


def test_rename_field_when_the_match_is_unique() -> None:
    old = model(Apps(), "Author", name=dorm.CharField(max_length=50), age=dorm.IntegerField())
    new = model(Apps(), "Author", full_name=dorm.CharField(max_length=50), age=dorm.IntegerField())
    assert summary(changes(state(old), state(new))["shop"]) == [
        ("RenameField", "Author", "name", "full_name")
    ]


def test_no_rename_field_when_ambiguous() -> None:
    old = model(Apps(), "Author", a=dorm.IntegerField(), b=dorm.IntegerField())
    new = model(Apps(), "Author", c=dorm.IntegerField(), d=dorm.IntegerField())
    assert summary(changes(state(old), state(new))["shop"]) == [
        ("RemoveField", "Author", "a"),
        ("RemoveField", "Author", "b"),
        ("AddField", "Author", "c"),
        ("AddField", "Author", "d"),
    ]


def test_no_rename_field_when_the_definition_changed() -> None:
    old = model(Apps(), "Author", name=dorm.CharField(max_length=50))
    new = model(Apps(), "Author", title=dorm.CharField(max_length=60))
    assert summary(changes(state(old), state(new))["shop"]) == [
        ("RemoveField", "Author", "name"),
        ("AddField", "Author", "title"),
    ]


# -- indexes, constraints, unique_together ---------------------------------------------------------


def test_indexes_and_constraints() -> None:
    kept = dorm.Index(fields=["name"], name="author_name_idx")
    gone = dorm.Index(fields=["-age"])
    check = dorm.CheckConstraint(condition=dorm.Q(age__gte=0), name="age_positive")
    unique = dorm.UniqueConstraint(fields=["name", "age"], name="name_age_uniq")
    fields = {"name": dorm.CharField(max_length=50), "age": dorm.IntegerField()}
    old = model(Apps(), "Author", meta={"indexes": [kept, gone], "constraints": [check]}, **fields)
    new_fields = {"name": dorm.CharField(max_length=50), "age": dorm.IntegerField()}
    added = dorm.Index(fields=["age"], name="author_age_idx")
    new = model(
        Apps(), "Author", meta={"indexes": [kept, added], "constraints": [unique]}, **new_fields
    )
    found = changes(state(old), state(new))["shop"]
    removed_index = found[0]
    assert summary(found) == [
        ("RemoveIndex", "Author", removed_index.name),
        ("RemoveConstraint", "Author", "age_positive"),
        ("AddIndex", "Author"),
        ("AddConstraint", "Author"),
    ]
    assert removed_index.name.startswith("shop_author_age_") and removed_index.name.endswith("_idx")
    assert found[2].index == added and found[3].constraint == unique


def test_unique_together_changes() -> None:
    def author_with(together: list[tuple[str, ...]]) -> ProjectState:
        return state(
            model(
                Apps(),
                "Author",
                meta={"unique_together": together},
                a=dorm.IntegerField(),
                b=dorm.IntegerField(),
                c=dorm.IntegerField(),
            )
        )

    added = changes(author_with([("a", "b")]), author_with([("a", "b"), ("b", "c")]))["shop"]
    assert [op.unique_together for op in added] == [[("a", "b"), ("b", "c")]]
    replaced = changes(author_with([("a", "b")]), author_with([("b", "c")]))["shop"]
    assert summary(replaced) == [("AlterUniqueTogether", "Author")] * 2
    assert [op.unique_together for op in replaced] == [[], [("b", "c")]]


# -- order and dependencies ------------------------------------------------------------------------


def test_models_are_created_after_the_models_their_foreign_keys_need() -> None:
    registry = Apps()
    models = [
        model(registry, "Article", writer=dorm.ForeignKey("Writer", on_delete=dorm.CASCADE)),
        model(registry, "Writer", agency=dorm.ForeignKey("Zagency", on_delete=dorm.CASCADE)),
        model(
            registry, "Zagency", parent=dorm.ForeignKey("self", null=True, on_delete=dorm.CASCADE)
        ),
        model(registry, "Bookmark", articles=dorm.ManyToManyField("Article")),
    ]
    found = changes(ProjectState(), state(*models))["shop"]
    assert summary(found) == [
        ("CreateModel", "Zagency"),
        ("CreateModel", "Writer"),
        ("CreateModel", "Article"),
        ("CreateModel", "Bookmark"),
    ]
    assert summary(changes(state(*models), ProjectState())["shop"]) == [
        ("DeleteModel", "Bookmark"),
        ("DeleteModel", "Article"),
        ("DeleteModel", "Writer"),
        ("DeleteModel", "Zagency"),
    ]


def test_foreign_key_cycle_is_broken_with_add_field() -> None:
    registry = Apps()
    models = [
        model(registry, "Alpha", beta=dorm.ForeignKey("Beta", null=True, on_delete=dorm.CASCADE)),
        model(registry, "Beta", alpha=dorm.ForeignKey("Alpha", on_delete=dorm.CASCADE)),
    ]
    found = changes(ProjectState(), state(*models))["shop"]
    assert summary(found) == [
        ("CreateModel", "Alpha"),
        ("CreateModel", "Beta"),
        ("AddField", "Alpha", "beta"),
    ]
    assert [name for name, _f in found[0].fields] == ["id"]


def test_field_changes_come_after_the_model_they_need() -> None:
    before = Apps()
    old = [author(before)]
    after = Apps()
    new = [
        author(after, publisher=dorm.ForeignKey("Publisher", null=True, on_delete=dorm.SET_NULL)),
        model(after, "Publisher", name=dorm.CharField(max_length=50)),
    ]
    assert summary(changes(state(*old), state(*new))["shop"]) == [
        ("CreateModel", "Publisher"),
        ("AddField", "Author", "publisher"),
    ]


def test_app_labels_filter_and_cross_app_dependencies() -> None:
    registry = Apps()
    user = model(registry, "User", app="accounts", email=dorm.EmailField())
    post = model(
        registry, "Post", app="blog", user=dorm.ForeignKey("accounts.User", on_delete=dorm.CASCADE)
    )
    detector = MigrationAutodetector(ProjectState(), state(user, post))
    assert list(detector.changes(app_labels=["blog"])) == ["blog"]
    found = detector.changes()
    assert list(found) == ["accounts", "blog"]
    planned = detector.arrange_for_graph(found, {})
    assert planned["accounts"].name == "0001_initial"
    assert planned["accounts"].dependencies == []
    assert planned["blog"].dependencies == [("accounts", "0001_initial")]
    # With accounts unchanged, blog depends on its current leaf.
    only_blog = detector.arrange_for_graph({"blog": found["blog"]}, {"accounts": "0007_x"})
    assert only_blog["blog"].dependencies == [("accounts", "0007_x")]


def test_arrange_for_graph_names_follow_the_leaf() -> None:
    old = author(Apps())
    new = author(Apps(), age=dorm.IntegerField(default=0))
    detector = MigrationAutodetector(state(old), state(new))
    planned = detector.arrange_for_graph(detector.changes(), {"shop": "0003_something"})
    assert planned["shop"].name == "0004_auto_author_age"
    assert planned["shop"].dependencies == [("shop", "0003_something")]
    long_change = author(
        Apps(), **{f"field_number_{i}": dorm.IntegerField(default=0) for i in range(5)}
    )
    detector = MigrationAutodetector(state(old), state(long_change))
    name = detector.arrange_for_graph(detector.changes(), {"shop": "0009_x"})["shop"].name
    assert name.startswith("0010_auto_author_field_number_0") and len(name) <= 50


def test_detected_changes_write_and_exec_back() -> None:
    registry = Apps()
    models = [
        author(registry, meta={"indexes": [dorm.Index(fields=["name"], name="a_name_idx")]}),
        model(registry, "Book", author=dorm.ForeignKey("Author", on_delete=dorm.PROTECT)),
    ]
    detector = MigrationAutodetector(ProjectState(), state(*models))
    planned = detector.arrange_for_graph(detector.changes(), {})["shop"]
    source = MigrationWriter(
        planned.name, "shop", planned.dependencies, planned.operations
    ).as_string()
    namespace: dict[str, Any] = {}
    exec(compile(source, planned.name, "exec"), namespace)
    migration = namespace["Migration"](planned.name, "shop")
    rebuilt = migration.operations
    assert [type(op) for op in rebuilt] == [ops.CreateModel, ops.CreateModel]
    replayed = migration.mutate_state(ProjectState())
    assert changes(replayed, state(*models)) == {}
