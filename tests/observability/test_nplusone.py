"""The N+1 detector on real loops over relations, the suggested fix, strict mode, the
middleware and the pytest fixture."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import dorm
from dorm.contrib.nplusone import (
    NPlusOneError,
    NPlusOneMiddleware,
    detect,
    shape_of,
    suggest_fix,
)
from dorm.test.queries import CaptureQueriesContext

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]


class Writer(dorm.Model):
    name = dorm.CharField(max_length=40)

    class Meta:
        app_label = "obs_n1"


class Genre(dorm.Model):
    name = dorm.CharField(max_length=40)

    class Meta:
        app_label = "obs_n1"


class Novel(dorm.Model):
    title = dorm.CharField(max_length=40)
    writer = dorm.ForeignKey(Writer, on_delete=dorm.CASCADE)
    genres = dorm.ManyToManyField(Genre)

    class Meta:
        app_label = "obs_n1"


class Bio(dorm.Model):
    writer = dorm.OneToOneField(Writer, on_delete=dorm.CASCADE)
    text = dorm.CharField(max_length=40, default="")

    class Meta:
        app_label = "obs_n1"


MODELS = [Writer, Genre, Novel, Bio]


@pytest.fixture
def library(clean_tables: Any) -> Any:
    writers = [Writer.objects.create(name=f"w{i}") for i in range(3)]
    genres = [Genre.objects.create(name=f"g{i}") for i in range(2)]
    for i in range(6):
        novel = Novel.objects.create(title=f"n{i}", writer=writers[i % 3])
        novel.genres.add(genres[i % 2])
    for w in writers:
        Bio.objects.create(writer=w)
    return clean_tables


def _line_of(marker: str) -> int:
    for number, line in enumerate(HERE.read_text().splitlines(), 1):
        if line.rstrip().endswith(f"# {marker}"):
            return number
    raise AssertionError(marker)


def _forward(qs: Any) -> list[str]:
    return [novel.writer.name for novel in qs]  # loop:forward


def _reverse(qs: Any) -> list[int]:
    return [len(list(writer.novel_set.all())) for writer in qs]  # loop:reverse


def _m2m(qs: Any) -> list[int]:
    return [len(list(novel.genres.all())) for novel in qs]  # loop:m2m


def _reverse_one(qs: Any) -> list[str]:
    return [writer.bio.text for writer in qs]  # loop:reverse-one


CASES = [
    (
        "forward FK",
        _forward,
        lambda: Novel.objects.all(),
        "select_related",
        "writer",
        "loop:forward",
        6,
    ),
    (
        "reverse FK",
        _reverse,
        lambda: Writer.objects.all(),
        "prefetch_related",
        "novel_set",
        "loop:reverse",
        3,
    ),
    (
        "many-to-many",
        _m2m,
        lambda: Novel.objects.all(),
        "prefetch_related",
        "genres",
        "loop:m2m",
        6,
    ),
    (
        "reverse one-to-one",
        _reverse_one,
        lambda: Writer.objects.all(),
        "select_related",
        "bio",
        "loop:reverse-one",
        3,
    ),
]


@pytest.mark.parametrize(
    ("case", "loop", "queryset", "method", "lookup", "marker", "rows"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_detected_on_a_real_loop_and_the_suggested_fix_removes_it(
    library: Any,
    case: str,
    loop: Any,
    queryset: Any,
    method: str,
    lookup: str,
    marker: str,
    rows: int,
) -> None:
    with CaptureQueriesContext() as before, detect(log=False) as scope:
        loop(queryset())
    (finding,) = scope.findings
    assert finding.count == rows == len(before) - 1
    assert finding.location.filename == str(HERE)
    assert finding.location.lineno == _line_of(marker)
    assert finding.fix is not None
    assert (finding.fix.method, finding.fix.lookup) == (method, lookup)
    assert finding.fix.code == f'{method}("{lookup}")'
    assert f"{HERE}:{_line_of(marker)}" in str(finding.fix)
    again = suggest_fix(finding.sql, model_hint=finding.model_hint)
    assert (again.method, again.lookup) == (method, lookup)
    fixed_result_before = loop(queryset())
    with CaptureQueriesContext() as after, detect(log=False) as fixed:
        fixed_result = loop(finding.fix.apply(queryset()))
    assert fixed.findings == []
    assert len(after) <= 2 and fixed_result == fixed_result_before


def test_suggest_fix_needs_a_hint_when_several_relations_match(library: Any) -> None:
    template = (
        'SELECT "obs_n1_writer"."id" FROM "obs_n1_writer" WHERE "obs_n1_writer"."id" = ? LIMIT 21'
    )
    with pytest.raises(ValueError, match=r"several relations read 'obs_n1_writer'.*Novel.*Bio"):
        suggest_fix(template)
    assert suggest_fix(template, model_hint=Novel).code == 'select_related("writer")'
    assert suggest_fix(template, model_hint=Bio).code == 'select_related("writer")'
    with pytest.raises(ValueError, match="no relation from Genre reads 'obs_n1_writer'"):
        suggest_fix(template, model_hint=Genre)
    with pytest.raises(ValueError, match="not a read of related rows"):
        suggest_fix("SELECT 1")
    with pytest.raises(TypeError, match="dorm model class"):
        suggest_fix(template, model_hint=dict)


def test_a_loop_without_repeats_and_single_queries_are_not_findings(library: Any) -> None:
    with detect(log=False) as scope:
        list(Novel.objects.select_related("writer"))
        Writer.objects.get(name="w0")
        Writer.objects.get(name="w1")  # same shape, another line: not a loop
    assert scope.findings == []


def test_in_lists_of_any_length_are_one_shape() -> None:
    a = 'SELECT "t"."id" FROM "t" WHERE "t"."id" IN (%s, %s, %s)'
    b = 'SELECT "t"."id" FROM "t" WHERE "t"."id" IN (?)'
    assert (
        shape_of(a).replace("%s", "?")
        == shape_of(b)
        == 'SELECT "t"."id" FROM "t" WHERE "t"."id" IN (...)'
    )


def test_findings_are_logged_as_warnings(library: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dorm.contrib.nplusone"), detect():
        _forward(Novel.objects.all())
    (record,) = [r for r in caplog.records if r.name == "dorm.contrib.nplusone"]
    assert record.levelno == logging.WARNING
    assert "N+1 query: 6 x" in record.getMessage()
    assert f"{HERE}:{_line_of('loop:forward')}" in record.getMessage()
    assert 'select_related("writer")' in record.getMessage()


def test_strict_mode_raises_naming_the_line_and_the_fix(library: Any) -> None:
    with pytest.raises(NPlusOneError) as info, detect(strict=True, log=False):
        _reverse(Writer.objects.all())
    message = str(info.value)
    assert f"{HERE}:{_line_of('loop:reverse')}" in message
    assert 'prefetch_related("novel_set")' in message
    assert len(info.value.findings) == 1
    # An exception already leaving the block wins over the report.
    with pytest.raises(KeyError), detect(strict=True, log=False):
        _reverse(Writer.objects.all())
        raise KeyError("first")


def test_threshold_option(library: Any) -> None:
    with detect(threshold=4, log=False) as scope:
        _reverse(Writer.objects.all())  # 3 repeats
    assert scope.findings == []
    with pytest.raises(ValueError, match="threshold=...\\): expected an int >= 2, got 1"):
        detect(threshold=1)


def test_scopes_of_threads_do_not_mix(library: Any) -> None:
    results: dict[str, int] = {}
    barrier = threading.Barrier(2)

    def looping() -> None:
        with detect(log=False) as scope:
            barrier.wait(10)
            _forward(Novel.objects.all())
        results["looping"] = len(scope.findings)

    def clean() -> None:
        with detect(log=False) as scope:
            barrier.wait(10)
            for _ in range(3):
                list(Novel.objects.select_related("writer"))
        results["clean"] = len(scope.findings)

    threads = [threading.Thread(target=looping), threading.Thread(target=clean)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # The clean thread repeats one query from one line too: that is its own finding, and
    # the looping thread's six writer reads never show up in it.
    assert results == {"looping": 1, "clean": 1}


def test_async_scope_finds_the_loop_line(library: Any) -> None:
    async def view() -> Any:
        async with detect(log=False) as scope:
            async for novel in Novel.objects.all():
                await Writer.objects.aget(pk=novel.writer_id)  # loop:async
        return scope

    scope = asyncio.run(view())
    (finding,) = scope.findings
    assert finding.count == 6
    assert (finding.location.filename, finding.location.lineno) == (
        str(HERE),
        _line_of("loop:async"),
    )


def test_wsgi_middleware_reports_each_request(library: Any) -> None:
    seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        if environ["PATH_INFO"] == "/slow":
            return [", ".join(_forward(Novel.objects.all())).encode()]
        return [str(Novel.objects.count()).encode()]

    wrapped = NPlusOneMiddleware(app, on_findings=seen.append)
    assert not wrapped.is_asgi
    statuses: list[str] = []
    body = wrapped({"PATH_INFO": "/slow"}, lambda status, headers: statuses.append(status))
    assert b"w0" in b"".join(body)
    assert len(seen) == 1 and seen[0][0].fix.code == 'select_related("writer")'
    wrapped({"PATH_INFO": "/fast"}, lambda status, headers: statuses.append(status))
    assert len(seen) == 1 and statuses == ["200 OK", "200 OK"]
    strict = NPlusOneMiddleware(app, strict=True)
    with pytest.raises(NPlusOneError):
        strict({"PATH_INFO": "/slow"}, lambda status, headers: None)


def test_asgi_middleware_reports_each_request(library: Any) -> None:
    seen: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        names = []
        async for novel in Novel.objects.all():
            names.append((await Writer.objects.aget(pk=novel.writer_id)).name)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": ",".join(names).encode()})

    wrapped = NPlusOneMiddleware(app, on_findings=seen.append)
    assert wrapped.is_asgi
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(wrapped({"type": "http", "path": "/"}, receive, send))
    assert sent[0]["status"] == 200 and b"w0" in sent[1]["body"]
    assert len(seen) == 1 and seen[0][0].count == 6
    asyncio.run(wrapped({"type": "lifespan"}, receive, send))  # not a request: no scope
    assert len(seen) == 1


def test_pytest_fixture_fails_a_test_with_an_n_plus_one(library: Any, tmp_path: Path) -> None:
    if library.vendor != "sqlite":
        pytest.skip("the fixture does not depend on the backend: one run, on SQLite, is enough")
    settings = library.settings
    test_file = tmp_path / "test_views.py"
    test_file.write_text(
        "import dorm\n"
        f"dorm.configure(DATABASES={{'default': {settings!r}}})\n"
        "class W(dorm.Model):\n"
        "    name = dorm.CharField(max_length=40)\n"
        "    class Meta:\n"
        "        app_label = 'obs_n1'\n"
        "        db_table = 'obs_n1_writer'\n"
        "class N(dorm.Model):\n"
        "    title = dorm.CharField(max_length=40)\n"
        "    writer = dorm.ForeignKey(W, on_delete=dorm.CASCADE)\n"
        "    class Meta:\n"
        "        app_label = 'obs_n1'\n"
        "        db_table = 'obs_n1_novel'\n"
        "def test_loop(dorm_nplusone):\n"
        "    assert [n.writer.name for n in N.objects.all()]\n"
        "def test_fixed(dorm_nplusone):\n"
        "    assert [n.writer.name for n in N.objects.select_related('writer')]\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "dorm.contrib.nplusone.pytest_plugin",
            "-p",
            "no:cacheprovider",
            str(test_file),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        # Only what the test needs: other installed plugins cannot change the outcome.
        env={**os.environ, "DORM_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    assert "2 passed, 1 error" in result.stdout, result.stdout[-2000:]
    assert "ERROR test_views.py::test_loop" in result.stdout
    assert "dorm_nplusone: N+1 query: 6 x" in result.stdout
    assert f"{test_file}:15" in result.stdout and 'select_related("writer")' in result.stdout
