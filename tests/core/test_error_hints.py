"""Errors that suggest the fix: the closest known name (difflib), and a lookup with no SQL
for the vendor naming the lookup, the vendor and what to define."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import dorm
from dorm.exceptions import FieldDoesNotExist, FieldError, NotSupportedError, PluginLoadError
from dorm.lookups import Lookup
from dorm.test import CaptureQueriesContext


class Article(dorm.Model):
    title = dorm.CharField(max_length=50)
    body = dorm.TextField(default="")

    class Meta:
        app_label = "t_hints"


class Post(dorm.Model):
    title = dorm.CharField(max_length=50)

    class Meta:
        app_label = "t_hints"


class Comment(dorm.Model):
    post = dorm.ForeignKey(Post, on_delete=dorm.CASCADE, related_name="comments")

    class Meta:
        app_label = "t_hints"


MODELS = [Article, Post, Comment]
pytestmark = pytest.mark.usefixtures("clean_tables")


def _error(call: Callable[[], Any], kind: type[Exception] = FieldError) -> str:
    with CaptureQueriesContext() as ctx, pytest.raises(kind) as info:
        call()
    assert ctx.captured_queries == []
    return str(info.value)


@pytest.mark.parametrize(
    ("call", "hint"),
    [
        (lambda: list(Article.objects.filter(titel="x")), "Did you mean 'title'?"),
        (lambda: list(Article.objects.order_by("-bdy")), "Did you mean 'body'?"),
        (lambda: list(Article.objects.values("titl")), "Did you mean 'title'?"),
        (lambda: list(Article.objects.filter(title__icontain="x")), "Did you mean 'icontains'?"),
        (lambda: list(Article.objects.filter(title__startwith="x")), "Did you mean 'startswith'?"),
    ],
    ids=["filter", "order_by", "values", "icontains", "startswith"],
)
def test_unknown_names_suggest_the_closest(db: Any, call: Callable[[], Any], hint: str) -> None:
    assert hint in _error(call)


def test_get_field_suggests_the_closest(db: Any) -> None:
    with pytest.raises(FieldDoesNotExist, match="Did you mean 'title'"):
        Article._meta.get_field("tilte")


def test_find_field_answers_none_where_get_field_raises(db: Any) -> None:
    opts = Comment._meta
    assert opts._find_field("post") is opts.get_field("post")
    assert opts._find_field("pk") is opts.pk
    assert Post._meta._find_field("comments") is Post._meta.get_field("comments")
    assert opts._find_field("in") is None


def test_a_lookup_after_a_relation_builds_no_suggestion(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``post__in`` walks the relation, then finds no field ``in``: an expected miss, for
    which no error message (nor its closest-name search) is made."""
    import dorm.models.options

    def refuse(*args: Any) -> str:
        raise AssertionError("a suggestion was computed")

    monkeypatch.setattr(dorm.models.options, "did_you_mean", refuse)
    post = Post.objects.create(title="t")
    Comment.objects.create(post=post)
    assert Comment.objects.filter(post__in=[post.pk]).count() == 1
    assert list(Post.objects.filter(comments__isnull=False)) == [post]


def test_unknown_names_after_a_relation_still_suggest(db: Any) -> None:
    message = _error(lambda: list(Comment.objects.filter(post__titel="x")))
    assert "unknown lookup 'titel'" in message and "Post has no field 'titel'" in message
    message = _error(lambda: list(Comment.objects.filter(post__title__startwith="x")))
    assert "Did you mean 'startswith'?" in message


def test_no_suggestion_when_nothing_is_close(db: Any) -> None:
    message = _error(lambda: list(Article.objects.filter(zzzzzz=1)))
    assert "Did you mean" not in message and "Choices are: body, id, pk, title" in message


def test_misspelt_hook_suggests_the_hook(register_plugin: Callable[[Any, str], None]) -> None:
    from dorm import plugins

    class Typo:
        @plugins.hookimpl
        def dorm_post_sav(self, sender: Any) -> None: ...

    with pytest.raises(PluginLoadError, match="Did you mean 'dorm_post_save'"):
        register_plugin(Typo(), "typo")


class Near(Lookup):
    """A plugin lookup with SQL for PostgreSQL only."""

    lookup_name = "near"

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list[object]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"levenshtein_less_equal({lhs}, {rhs}, 1) <= 1", [*lhs_params, *rhs_params]


class Bare(Lookup):
    """A plugin lookup with no SQL at all."""

    lookup_name = "bare"


class Lookups:
    @staticmethod
    def dorm_register_lookups() -> list[tuple[type, type]]:
        return [(dorm.CharField, Near), (dorm.CharField, Bare)]


def test_lookup_without_sql_for_the_vendor_names_lookup_vendor_and_fix(
    db: Any, register_plugin: Callable[[Any, str], None]
) -> None:
    from dorm import plugins

    hooks = Lookups()
    hooks.dorm_register_lookups = plugins.hookimpl(Lookups.dorm_register_lookups)  # type: ignore[method-assign]
    register_plugin(hooks, "t-hints-lookups")
    Article.objects.create(title="orm")
    message = _error(lambda: list(Article.objects.filter(title__bare="x")), NotSupportedError)
    assert "lookup 'bare'" in message and "Bare" in message
    assert f"vendor {db.vendor!r}" in message
    assert f"define as_sql() or as_{db.vendor}()" in message
    if db.vendor == "sqlite":
        message = _error(lambda: list(Article.objects.filter(title__near="x")), NotSupportedError)
        assert "lookup 'near'" in message and "as_sqlite()" in message
    assert Article.objects.count() == 1
