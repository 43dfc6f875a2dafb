"""dorm-security's half of docs/security.md, its README and the release note's snippets run
as printed, on SQLite."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "security.md"
README = REPO / "packages" / "dorm-security" / "README.md"
_FENCE = re.compile(r"^```(python)?\n(.*?)^```$", re.M | re.S)
PLUGIN_PART = "\n# dorm-security"  # the page's first half is dorm-core's (tests/core)


@pytest.fixture
def clean_apps() -> Iterator[None]:
    from dorm.contrib.auth import tokens
    from dorm.contrib.permissions import get_permission_source, set_permission_source

    store, source = tokens.default_store(), get_permission_source()
    yield
    tokens.set_default_store(store)
    set_permission_source(source)
    from dorm.apps import apps

    for label in list(apps.all_models):
        if label in ("docs_sec_plugin", "readme", "release_note"):
            apps.clear(label)


def test_security_md_plugin_part_runs_and_prints_what_it_shows(
    fresh_settings: Any, clean_apps: Any, run_printed_markdown: Any, tmp_path: Path
) -> None:
    text = DOC.read_text()
    assert text.count(PLUGIN_PART) == 1
    part = tmp_path / "security.md"
    part.write_text(PLUGIN_PART + text.split(PLUGIN_PART, 1)[1])
    assert run_printed_markdown(part, "docs_sec_plugin") == 5


def test_readme_example_runs(
    fresh_settings: Any, clean_apps: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    (code,) = [c for lang, c in _FENCE.findall(README.read_text()) if lang == "python"]
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out == "slow down: retry in 1.0 s\n"


def test_release_note_snippets_run_as_written(fresh_settings: Any, clean_apps: Any) -> None:
    """whats-new-4.3, "Tier 8 — security" and "Tier 7 expansion", with the setup added."""
    import dorm
    from dorm.contrib.auth.tokens import ShortLivedToken, issue_short_lived_token
    from dorm.contrib.permissions import GroupMembership, PermissionGrant, grant
    from dorm.migrations.schema import SchemaEditor

    dorm.configure(
        DATABASES={"default": {"ENGINE": "sqlite", "NAME": tempfile.mkdtemp() + "/n.db"}}
    )
    namespace: dict[str, Any] = {"__name__": "release_note", "dorm": dorm}
    exec(
        "class User(dorm.Model):\n"
        "    email = dorm.EmailField(unique=True)\n"
        "    phone = dorm.CharField(max_length=20)\n"
        "    notes = dorm.TextField()\n"
        "    credit_card = dorm.CharField(max_length=19)\n",
        namespace,
    )
    user_model = namespace["User"]
    with SchemaEditor() as editor:
        for model in (user_model, ShortLivedToken, PermissionGrant, GroupMembership):
            editor.create_model(model)
    for i in range(3):
        user_model.objects.create(
            email=f"u{i}@x.example", phone=f"555-{i}", notes="n", credit_card=f"4111{i}"
        )
    namespace["current_token"] = issue_short_lived_token("user:1")
    exec(
        "from dorm.contrib.anonymizer import anonymize_model\n"
        "\n"
        "anonymize_model(User, {\n"
        '    "email": "random_email",\n'
        '    "phone": "random_phone",\n'
        '    "notes": "redact",\n'
        '    "credit_card": lambda v: "•••• •••• •••• ••••",\n'
        "})\n"
        "from dorm.contrib.auth.tokens import rotate_short_lived_token\n"
        "\n"
        "new_tok, old_tok = rotate_short_lived_token(current_token)\n",
        namespace,
    )
    rows = list(user_model.objects.values_list("email", "phone", "notes", "credit_card"))
    assert len({r[0] for r in rows}) == 3 and all(r[1].startswith("+999") for r in rows)
    assert {r[2:] for r in rows} == {("[REDACTED]", "•••• •••• •••• ••••")}
    assert namespace["old_tok"] == namespace["current_token"] != namespace["new_tok"]

    exec(
        "from dorm.contrib.permissions import requires, requires_any\n"
        "\n"
        '@requires("article.edit", scope="article")\n'
        "def edit(user, article, payload): ...\n"
        "\n"
        '@requires_any("admin.read", "audit.read")\n'
        "def view_audit(user): ...\n"
        "from dorm.contrib.rate_limit import TokenBucket, rate_limited\n"
        "\n"
        "bucket = TokenBucket(rate_per_second=10, burst=20)\n"
        "\n"
        "@rate_limited(bucket, key=lambda req: req.ip)\n"
        "def signup(req): ...\n",
        namespace,
    )
    from dorm.contrib.permissions import PermissionDenied
    from dorm.contrib.rate_limit import RateLimited

    someone = user_model.objects.first()
    with pytest.raises(PermissionDenied, match="'admin.read', 'audit.read'"):
        namespace["view_audit"](someone)
    grant(someone, "audit.read")
    assert namespace["view_audit"](someone) is None

    class Req:
        ip = "198.51.100.7"

    for _ in range(20):
        namespace["signup"](Req())
    with pytest.raises(RateLimited):
        namespace["signup"](Req())
