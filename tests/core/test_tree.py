"""dorm.tree.subtree_filter: recursive-CTE subtrees on both backends."""

from __future__ import annotations

from typing import Any

import pytest

import dorm
from dorm.exceptions import FieldError
from dorm.test import CaptureQueriesContext
from dorm.tree import subtree_filter


class Node(dorm.Model):
    name = dorm.CharField(max_length=50)
    is_active = dorm.BooleanField(default=True)
    label = dorm.CharField(max_length=50, default="")
    parent = dorm.ForeignKey("self", on_delete=dorm.CASCADE, null=True, related_name="children")

    class Meta:
        app_label = "test_tree"


class Category(dorm.Model):
    title = dorm.CharField(max_length=50)
    up = dorm.ForeignKey("self", on_delete=dorm.CASCADE, null=True, related_name="downs")
    owner = dorm.ForeignKey(Node, on_delete=dorm.CASCADE, null=True, related_name="categories")

    class Meta:
        app_label = "test_tree"


MODELS = [Node, Category]
pytestmark = pytest.mark.usefixtures("clean_tables")


def make_tree() -> dict[str, Node]:
    """root > a > a1 > a1x (4 levels), root > b, and a separate tree other > o1."""
    nodes: dict[str, Node] = {}

    def add(name: str, parent: str | None, **kw: Any) -> None:
        nodes[name] = Node.objects.create(name=name, parent=nodes[parent] if parent else None, **kw)

    add("root", None)
    add("a", "root")
    add("a1", "a")
    add("a1x", "a1")
    add("a2", "a", is_active=False)
    add("a2x", "a2")
    add("b", "root", label="50%?")
    add("other", None)
    add("o1", "other")
    return nodes


def names(qs: Any) -> list[str]:
    return sorted(qs.values_list("name", flat=True))


def test_four_level_subtree(db) -> None:
    t = make_tree()
    assert names(subtree_filter(Node, root_pk=t["root"].pk)) == [
        "a", "a1", "a1x", "a2", "a2x", "b", "root"
    ]  # fmt: skip
    assert names(subtree_filter(Node, root_pk=t["a"].pk)) == ["a", "a1", "a1x", "a2", "a2x"]
    assert names(subtree_filter(Node, root_pk=t["a1x"].pk)) == ["a1x"]
    assert names(subtree_filter(Node, root_pk=t["other"])) == ["o1", "other"]


def test_unknown_root_is_empty(db) -> None:
    make_tree()
    qs = subtree_filter(Node, root_pk=987654)
    assert list(qs) == [] and qs.count() == 0


def test_cycle_terminates(db) -> None:
    a = Node.objects.create(name="a")
    b = Node.objects.create(name="b", parent=a)
    Node.objects.filter(pk=a.pk).update(parent=b)
    Node.objects.create(name="c", parent=b)
    assert names(subtree_filter(Node, root_pk=a.pk)) == ["a", "b", "c"]
    assert names(subtree_filter(Node, root_pk=b.pk)) == ["a", "b", "c"]


def test_where_sql_prunes_failing_nodes_with_their_subtree(db) -> None:
    t = make_tree()
    qs = subtree_filter(Node, root_pk=t["root"].pk, where_sql="is_active = ?", where_params=[True])
    assert names(qs) == ["a", "a1", "a1x", "b", "root"]  # a2 and its child a2x are pruned
    qs = subtree_filter(Node, root_pk=t["a2"].pk, where_sql="is_active = ?", where_params=[True])
    assert names(qs) == []  # the root itself fails the condition


def test_where_sql_several_params_and_strings(db) -> None:
    t = make_tree()
    qs = subtree_filter(
        Node,
        root_pk=t["root"].pk,
        where_sql="is_active = ? AND name <> ?",
        where_params=[True, "a1"],
    )
    assert names(qs) == ["a", "b", "root"]


def test_param_with_question_mark_and_percent_is_literal(db) -> None:
    t = make_tree()
    qs = subtree_filter(
        Node, root_pk=t["root"].pk, where_sql="label = ? OR name = ?", where_params=["50%?", "root"]
    )
    assert names(qs) == ["b", "root"]
    # A LIKE pattern passed as a parameter keeps its % wildcard meaning.
    qs = subtree_filter(
        Node,
        root_pk=t["root"].pk,
        where_sql="name = ? OR label LIKE ?",
        where_params=["root", "%?"],
    )
    assert names(qs) == ["b", "root"]


def test_question_mark_and_percent_in_quoted_literal_are_not_placeholders(db) -> None:
    t = make_tree()
    Node.objects.filter(pk=t["a"].pk).update(label="what?")
    qs = subtree_filter(
        Node,
        root_pk=t["root"].pk,
        where_sql="name = ? OR label = 'what?' OR label = '50%?'",
        where_params=["root"],
    )
    assert names(qs) == ["a", "b", "root"]  # a1 is below a but has no matching label
    qs = subtree_filter(
        Node,
        root_pk=t["root"].pk,
        where_sql="\"label\" <> 'it''s ?' AND id > ? -- trailing ? comment",
        where_params=[0],
    )
    assert len(names(qs)) == 7


def test_chaining(db) -> None:
    t = make_tree()
    qs = subtree_filter(Node, root_pk=t["a"].pk)
    assert qs.count() == 5
    # A chained filter() checks each row: unlike where_sql it does not prune subtrees.
    assert names(qs.filter(is_active=True)) == ["a", "a1", "a1x", "a2x"]
    assert list(qs.exclude(name="a").order_by("-name").values_list("name", flat=True)) == [
        "a2x", "a2", "a1x", "a1"
    ]  # fmt: skip
    assert list(qs.filter(name="a1").values("name", "parent")) == [
        {"name": "a1", "parent": t["a"].pk}
    ]
    assert qs.update(label="sub") == 5
    assert names(Node.objects.filter(label="sub")) == ["a", "a1", "a1x", "a2", "a2x"]
    deleted, _ = subtree_filter(Node, root_pk=t["a1"].pk).delete()
    assert deleted == 2
    assert names(Node.objects.all()) == ["a", "a2", "a2x", "b", "o1", "other", "root"]
    assert names(subtree_filter(Node, root_pk=t["root"].pk)) == ["a", "a2", "a2x", "b", "root"]


def test_using_and_get(db) -> None:
    t = make_tree()
    qs = subtree_filter(Node, root_pk=t["b"].pk).using("default")
    assert qs.get().name == "b"


def test_custom_parent_field(db) -> None:
    top = Category.objects.create(title="top")
    mid = Category.objects.create(title="mid", up=top)
    Category.objects.create(title="leaf", up=mid)
    Category.objects.create(title="alone")
    qs = subtree_filter(Category, root_pk=mid.pk, parent_field="up")
    assert sorted(qs.values_list("title", flat=True)) == ["leaf", "mid"]
    qs = subtree_filter(
        Category, root_pk=top.pk, where_sql="title <> ?", where_params=["mid"], parent_field="up"
    )
    assert list(qs.values_list("title", flat=True)) == ["top"]


@pytest.mark.parametrize(
    ("model", "field", "fragment"),
    [
        (Node, "nope", "Node.nope: no such field"),
        (Node, "name", "Node.name: parent_field must be a ForeignKey"),
        (Node, "children", "Node.children: parent_field must be a ForeignKey"),
        (Category, "parent", "Category.parent: no such field"),
        (Category, "owner", "Category.owner: parent_field must be a ForeignKey"),
    ],
)
def test_bad_parent_field_raises_before_any_query(
    db, model: Any, field: str, fragment: str
) -> None:
    with CaptureQueriesContext() as ctx, pytest.raises(FieldError) as exc:
        subtree_filter(model, root_pk=1, parent_field=field)
    assert len(ctx) == 0
    assert isinstance(exc.value, ValueError)
    message = str(exc.value)
    assert fragment in message
    assert ("up" if model is Category else "parent") in message.rsplit(".", 2)[-2]


@pytest.mark.parametrize(
    ("where_sql", "params"),
    [
        ("is_active = ?", []),
        ("is_active = ?", [True, False]),
        ("name = '?'", ["x"]),
        (None, [1]),
        ("name = ? AND label = ?", ["x"]),
    ],
)
def test_wrong_param_count_raises_before_any_query(db, where_sql: Any, params: list[Any]) -> None:
    with CaptureQueriesContext() as ctx, pytest.raises(ValueError, match="placeholder"):
        subtree_filter(Node, root_pk=1, where_sql=where_sql, where_params=params)
    assert len(ctx) == 0


def test_other_bad_arguments(db) -> None:
    with CaptureQueriesContext() as ctx:
        with pytest.raises(ValueError, match="root_pk is required"):
            subtree_filter(Node, root_pk=None)
        with pytest.raises(TypeError):
            subtree_filter(Node)  # type: ignore[call-arg]
        with pytest.raises(ValueError, match="unterminated"):
            subtree_filter(Node, root_pk=1, where_sql="name = 'x")
        with pytest.raises(TypeError, match="model class"):
            subtree_filter(object, root_pk=1)  # type: ignore[arg-type]
    assert len(ctx) == 0


def test_params_are_bound_not_formatted(db) -> None:
    t = make_tree()
    qs = subtree_filter(
        Node, root_pk=t["root"].pk, where_sql="name <> ?", where_params=["x' OR 1=1 --"]
    )
    with CaptureQueriesContext() as ctx:
        assert len(names(qs)) == 7
    (query,) = ctx.captured_queries
    assert "WITH RECURSIVE" in query["sql"] and "UNION ALL" not in query["sql"]
    assert "OR 1=1" not in query["sql"]
    assert "x' OR 1=1 --" in query["params"]
