"""Permissions on SQLite and PostgreSQL: user and group grants, object scopes, querysets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import dorm
from dorm.contrib.permissions import (
    GroupMembership,
    ModelPermissionSource,
    PermissionDenied,
    PermissionGrant,
    add_to_group,
    get_permission_source,
    grant,
    grant_group,
    permitted,
    requires,
    requires_any,
    revoke,
    set_permission_source,
)
from dorm.exceptions import SynchronousOnlyOperation


class Account(dorm.Model):
    name = dorm.CharField(max_length=30)

    class Meta:
        app_label = "sec_perm"

    def __str__(self) -> str:
        return self.name


class Article(dorm.Model):
    title = dorm.CharField(max_length=50)

    class Meta:
        app_label = "sec_perm"


MODELS = [PermissionGrant, GroupMembership, Account, Article]
pytestmark = pytest.mark.usefixtures("clean_tables")


@requires("article.edit", scope="article")
def edit(user: Any, article: Any, title: str) -> str:
    Article.objects.filter(pk=article.pk).update(title=title)
    return title


@requires_any("admin.read", "audit.read")
def view_audit(user: Any) -> str:
    return "audit log"


@requires("report.run")
def run_report(request: Any, user: Any) -> str:  # the user is the argument named "user"
    return f"report for {request}"


@pytest.fixture
def people(db: Any) -> tuple[Any, Any, Any, Any]:
    alice = Account.objects.create(name="alice")
    bob = Account.objects.create(name="bob")
    first = Article.objects.create(title="first")
    second = Article.objects.create(title="second")
    return alice, bob, first, second


def test_scoped_grant_allows_that_object_only(people: Any) -> None:
    alice, bob, first, second = people
    grant(alice, "article.edit", obj=first)
    assert edit(alice, first, "edited") == "edited"
    assert Article.objects.get(pk=first.pk).title == "edited"
    with pytest.raises(PermissionDenied) as info:
        edit(alice, article=second, title="nope")  # resolved from the keyword argument
    assert str(info.value) == (
        f"user alice (pk={alice.pk}) lacks permission 'article.edit' "
        f"on sec_perm.Article pk={second.pk}"
    )
    assert info.value.permissions == ("article.edit",) and info.value.obj == second
    assert Article.objects.get(pk=second.pk).title == "second"
    with pytest.raises(PermissionDenied, match="user bob"):
        edit(bob, first, "nope")


def test_global_grant_covers_every_object(people: Any) -> None:
    alice, _bob, first, second = people
    grant(alice, "article.edit")
    assert edit(alice, first, "a") == "a" and edit(alice, second, "b") == "b"
    assert revoke(alice, "article.edit") == 1
    with pytest.raises(PermissionDenied):
        edit(alice, first, "c")


def test_group_grants_reach_members(people: Any) -> None:
    alice, bob, first, _second = people
    grant_group("editors", "article.edit", obj=first)
    grant_group("auditors", "audit.read")
    with pytest.raises(PermissionDenied):
        edit(bob, first, "x")
    add_to_group(bob, "editors")
    add_to_group(bob, "editors")  # idempotent
    assert edit(bob, first, "by bob") == "by bob"
    with pytest.raises(PermissionDenied) as info:
        view_audit(bob)
    assert str(info.value) == (
        f"user bob (pk={bob.pk}) lacks any of the permissions 'admin.read', 'audit.read'"
    )
    add_to_group(bob, "auditors")
    assert view_audit(bob) == "audit log"
    grant(alice, "admin.read")
    assert view_audit(alice) == "audit log"
    assert GroupMembership.objects.filter(user_id=str(bob.pk)).count() == 2


def test_the_user_argument_and_anonymous_users(people: Any) -> None:
    alice, _bob, _first, _second = people
    grant(alice, "report.run")
    assert run_report("q3", alice) == "report for q3"
    with pytest.raises(PermissionDenied, match=r"user None \(anonymous\) lacks permission"):
        run_report("q3", None)
    assert permitted(None, "article.edit", Article.objects.all()).count() == 0


def test_a_scope_that_is_no_parameter_fails_at_decoration() -> None:
    with pytest.raises(TypeError, match=r"scope='post' is not one of its parameters \(user, a\)"):

        @requires("article.edit", scope="post")
        def bad(user: Any, a: Any) -> None: ...

    with pytest.raises(ValueError, match="a permission is a non-empty str"):
        requires("")
    with pytest.raises(ValueError, match="at least one permission"):
        requires_any()


def test_queryset_form_lists_only_permitted_rows(people: Any) -> None:
    alice, bob, first, second = people
    third = Article.objects.create(title="third")
    grant(alice, "article.view", obj=first)
    grant(alice, "article.view", obj=third)
    grant(alice, "article.edit", obj=second)
    rows = permitted(alice, "article.view", Article.objects.order_by("pk"))
    assert [a.title for a in rows] == ["first", "third"]
    assert permitted(bob, "article.view", Article.objects.all()).count() == 0
    grant_group("readers", "article.view")
    add_to_group(bob, "readers")
    narrowed = Article.objects.filter(title__in=["first", "second"]).order_by("pk")
    assert [a.title for a in permitted(bob, "article.view", narrowed)] == ["first", "second"]


def test_async_functions_are_guarded_without_blocking(people: Any) -> None:
    alice, bob, first, _second = people
    grant(alice, "article.edit", obj=first)

    @requires("article.edit", scope="article")
    async def aedit(user: Any, article: Any) -> str:
        return f"edited {article.pk}"

    assert asyncio.run(aedit(alice, first)) == f"edited {first.pk}"
    with pytest.raises(PermissionDenied, match="user bob"):
        asyncio.run(aedit(bob, first))

    # The sync twin inside a running loop is refused by dorm's guard: the async path above
    # passing proves it made no blocking ORM call.
    async def blocking() -> Any:
        return edit(alice, first, "from the loop")

    with pytest.raises(SynchronousOnlyOperation):
        asyncio.run(blocking())


class StaticSource:
    """A source that asks no database: a dict of user name -> permissions."""

    def __init__(self, perms: dict[str, set[str]]) -> None:
        self.perms = perms

    def has_perm(self, user: Any, perm: str, obj: Any = None) -> bool:
        return perm in self.perms.get(str(user), set())

    async def ahas_perm(self, user: Any, perm: str, obj: Any = None) -> bool:
        return self.has_perm(user, perm, obj)

    def permitted(self, user: Any, perm: str, queryset: Any) -> Any:
        return queryset if self.has_perm(user, perm) else queryset.none()


def test_the_source_is_pluggable(people: Any) -> None:
    alice, bob, first, _second = people
    previous = set_permission_source(StaticSource({"bob": {"audit.read", "article.edit"}}))
    try:
        assert view_audit(bob) == "audit log" and edit(bob, first, "x") == "x"
        with pytest.raises(PermissionDenied):
            view_audit(alice)
        assert permitted(bob, "article.edit", Article.objects.all()).count() == 2
    finally:
        assert set_permission_source(previous).__class__ is StaticSource
    assert isinstance(get_permission_source(), ModelPermissionSource)
    with pytest.raises(TypeError, match="is not a permission source"):
        set_permission_source(object())  # type: ignore[arg-type]
    own = requires("audit.read", source=StaticSource({"alice": {"audit.read"}}))(lambda user: "ok")
    assert own(alice) == "ok"


def test_scoped_grant_needs_a_saved_object(people: Any) -> None:
    alice, *_ = people
    with pytest.raises(TypeError, match="needs a saved model instance"):
        grant(alice, "article.edit", obj=Article(title="unsaved"))
    with pytest.raises(ValueError, match="needs a user with a primary key"):
        grant(None, "article.edit")
