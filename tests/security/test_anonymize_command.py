"""``dorm anonymize app.Model --set col=strategy ... [--seed S] [--dry-run] [--after PK]``."""

from __future__ import annotations

from typing import Any

import pytest

import dorm
from dorm.cli import main
from dorm.contrib.anonymizer.commands import parse_assignments
from dorm.db.connection import get_connection


class Member(dorm.Model):
    email = dorm.EmailField(unique=True, pii=True)
    phone = dorm.CharField(max_length=20, default="")
    notes = dorm.TextField(default="")
    tier = dorm.CharField(max_length=10, default="gold")

    class Meta:
        app_label = "sec_cli"


MODELS = [Member]
LABEL = "sec_cli.Member"
pytestmark = pytest.mark.usefixtures("clean_tables")


def _members(n: int) -> list[Any]:
    Member.objects.bulk_create(
        [Member(email=f"m{i}@corp.example", phone=f"+1555{i:07d}", notes=f"n{i}") for i in range(n)]
    )
    return list(Member.objects.order_by("pk"))


def _rows() -> list[tuple[Any, ...]]:
    return list(Member.objects.order_by("pk").values_list("pk", "email", "phone", "notes", "tier"))


def test_command_masks_with_a_seed_and_reports(db: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _members(7)
    args = ["anonymize", LABEL, "--set", "email=random_email", "--set", "notes=redact"]
    assert main([*args, "--seed", "k1", "--batch-size", "3"]) == 0
    assert capsys.readouterr().out == "sec_cli.Member: 7 row(s) anonymized\n"
    first = _rows()
    assert {r[3] for r in first} == {"[REDACTED]"} and {r[4] for r in first} == {"gold"}
    assert [r[2] for r in first] == [f"+1555{i:07d}" for i in range(7)]  # not listed
    assert len({r[1] for r in first}) == 7
    # Same seed over the same originals: the same pseudonyms.
    Member.objects.all().delete()
    _members(7)
    assert main([*args, "--seed", "k1"]) == 0
    assert [r[1:] for r in _rows()] == [r[1:] for r in first]


def test_seed_from_the_environment(
    db: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _members(3)
    args = ["anonymize", LABEL, "--set", "email=random_email"]
    assert main([*args, "--seed", "k2"]) == 0
    by_seed = [r[1] for r in _rows()]
    Member.objects.all().delete()
    _members(3)
    monkeypatch.setenv("ANON_SEED", "k2")
    assert main([*args, "--seed-env", "ANON_SEED"]) == 0
    assert [r[1] for r in _rows()] == by_seed
    monkeypatch.delenv("ANON_SEED")
    assert main([*args, "--seed-env", "ANON_SEED"]) == 1
    assert "--seed-env ANON_SEED: the variable is not set or empty" in capsys.readouterr().err


def test_dry_run_writes_nothing(db: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _members(4)
    before = _rows()
    code = main(["anonymize", LABEL, "--set", "phone=random_phone", "--dry-run"])
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "sec_cli.Member.email: pii=True but not in --set; left as it is",
        "sec_cli.Member: would anonymize 4 row(s): phone=random_phone",
    ]
    assert _rows() == before


def _install_failing_trigger(vendor: str, pk: int) -> None:
    conn = get_connection()
    qn = conn.ops.quote_name
    table = qn(Member._meta.db_table)
    if vendor == "sqlite":
        conn.execute(
            f"CREATE TRIGGER {qn('sec_cli_fail')} BEFORE UPDATE ON {table} "
            f"WHEN OLD.id = {int(pk)} BEGIN SELECT RAISE(ABORT, 'row is locked by audit'); END"
        )
    else:
        conn.execute(
            f"CREATE FUNCTION {qn('sec_cli_fail')}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN IF OLD.id = {int(pk)} THEN RAISE EXCEPTION 'row is locked by audit'; "
            "END IF; RETURN NEW; END $$"
        )
        conn.execute(
            f"CREATE TRIGGER {qn('sec_cli_fail')} BEFORE UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {qn('sec_cli_fail')}()"
        )


def _drop_failing_trigger(vendor: str) -> None:
    conn = get_connection()
    qn = conn.ops.quote_name
    if vendor == "sqlite":
        conn.execute(f"DROP TRIGGER {qn('sec_cli_fail')}")
    else:
        conn.execute(f"DROP TRIGGER {qn('sec_cli_fail')} ON {qn(Member._meta.db_table)}")
        conn.execute(f"DROP FUNCTION {qn('sec_cli_fail')}()")


def test_failure_midway_reports_where_to_resume(
    db: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    members = _members(10)
    _install_failing_trigger(db.vendor, members[6].pk)  # third batch of 3
    args = ["anonymize", LABEL, "--set", "notes=redact", "--batch-size", "3"]
    try:
        assert main(args) == 1
        err = capsys.readouterr().err
        assert "row is locked by audit" in err and "6 row(s) of earlier batches" in err
        resume = (
            f"resume with: dorm anonymize {LABEL} --set notes=redact --batch-size 3 "
            f"--after {members[5].pk}"
        )
        assert resume in err.splitlines()
        assert [r[3] for r in _rows()] == ["[REDACTED]"] * 6 + [f"n{i}" for i in range(6, 10)]
    finally:
        _drop_failing_trigger(db.vendor)
    assert main([*args, "--after", str(members[5].pk)]) == 0
    assert capsys.readouterr().out.endswith("sec_cli.Member: 4 row(s) anonymized\n")
    assert [r[3] for r in _rows()] == ["[REDACTED]"] * 10


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sec_cli.Nobody", "--set", "email=null"], "no model sec_cli.Nobody"),
        ([LABEL, "--set", "email"], "--set 'email': expected column=strategy"),
        ([LABEL, "--set", "tier=random_ssn"], "unknown strategy 'random_ssn'"),
        ([LABEL, "--set", "tier=null"], "strategy 'null' on a NOT NULL column"),
        ([LABEL, "--set", "nope=redact"], "'nope', which is not a concrete field"),
        ([LABEL, "--set", "tier=redact", "--batch-size", "0"], "--batch-size must be at least"),
        ([LABEL, "--set", "tier=redact", "--after", "abc"], "--after 'abc' is not a primary key"),
    ],
)
def test_bad_arguments_are_one_line_errors(
    db: Any, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    _members(2)
    before = _rows()
    assert main(["anonymize", *argv]) == 1
    assert message in capsys.readouterr().err
    assert _rows() == before


def test_parse_assignments_rejects_a_column_given_twice() -> None:
    assert parse_assignments(["a=null", " b = redact "]) == {"a": "null", "b": "redact"}
    with pytest.raises(ValueError, match="column 'a' is given twice"):
        parse_assignments(["a=null", "a=redact"])


def test_command_is_listed_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        main(["--help"])
    except SystemExit as exc:  # argparse's own exit, depending on how the CLI runs help
        assert exc.code == 0
    assert "anonymize      mask columns of a model in place" in capsys.readouterr().out
