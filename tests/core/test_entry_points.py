"""dorm.entry_points reads what importlib.metadata reads, and leaves it every other layout."""

from __future__ import annotations

import os.path
import sys
import zipfile
from pathlib import Path

import pytest

from dorm import entry_points as eps
from dorm.entry_points import EntryPoint

ENTRY_POINTS = """\
# a comment, then a blank line

[console_scripts]
tool = pkg.cli:main

[dorm]
  spaced   =   pkg.plugin
attr = pkg.plugin:Plugin.hooks [extra]
[other]
dorm = not.this.one
[dorm]
again=pkg.more
"""


def _dist(root: Path, dirname: str, entry_points: str | None, headers: str | None = None) -> Path:
    path = root / dirname
    path.mkdir(parents=True)
    name, _, rest = dirname.rpartition(".")[0].partition("-")
    if headers is None:
        headers = f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {rest}\n"
    metadata = "PKG-INFO" if dirname.endswith(".egg-info") else "METADATA"
    (path / metadata).write_text(headers + "\nLong description: Name: wrong\n")
    if entry_points is not None:
        (path / "entry_points.txt").write_text(entry_points)
    return path


def _importlib(group: str) -> list[tuple[str, str, str, str]]:
    """What importlib.metadata itself finds, with each distribution's parsed metadata."""
    from importlib import metadata

    found = []
    for ep in metadata.entry_points(group=group):
        assert ep.dist is not None
        found.append((ep.name, ep.value, ep.dist.metadata["Name"], ep.dist.version))
    return found


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Two directories as the whole of ``sys.path``, the working directory empty."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setattr(sys, "path", [str(first), str(tmp_path / "missing"), "", str(second)])
    return first, second


@pytest.mark.parametrize("group", ["dorm", "console_scripts", "pytest11"])
def test_the_installed_distributions_read_as_importlib_metadata_reads_them(group: str) -> None:
    found = eps._scan(group)
    assert [tuple(ep) for ep in found] == _importlib(group)
    if group == "dorm":
        assert {ep.distribution for ep in found} >= {"dorm-tasks", "dorm-temporal"}


def test_sections_comments_shadowing_and_egg_info_as_importlib(site: tuple[Path, Path]) -> None:
    first, second = site
    _dist(first, "dorm_alpha-1.0.dist-info", ENTRY_POINTS)
    _dist(second, "Dorm.Alpha-2.0.dist-info", "[dorm]\nshadowed = pkg.old\n")  # same name
    _dist(second, "dorm_beta-0.3.egg-info", "[dorm]\nbeta = beta.plugin\n")
    _dist(second, "dorm_gamma-1.1.dist-info", None)  # no entry points at all
    _dist(first, "dorm_delta-4.0.dist-info", None)  # declares nothing: still shadows
    _dist(second, "dorm_delta-5.0.dist-info", "[dorm]\ndelta = delta.plugin\n")
    (second / "legacy-1.0.egg-info").write_text("Name: legacy\n")  # an egg-info file
    found = eps._scan("dorm")
    assert [tuple(ep) for ep in found] == _importlib("dorm")
    assert found == [
        EntryPoint("spaced", "pkg.plugin", "dorm-alpha", "1.0"),
        EntryPoint("attr", "pkg.plugin:Plugin.hooks [extra]", "dorm-alpha", "1.0"),
        EntryPoint("again", "pkg.more", "dorm-alpha", "1.0"),
        EntryPoint("beta", "beta.plugin", "dorm-beta", "0.3"),
    ]
    assert eps.entry_points("dorm") == found


def _zip_site(root: Path) -> Path:
    archive = root / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("dorm_zipped-1.0.dist-info/METADATA", "Name: dorm-zipped\nVersion: 1.0\n")
        zf.writestr("dorm_zipped-1.0.dist-info/entry_points.txt", "[dorm]\nzipped = z.plugin\n")
    return archive


def test_layouts_left_to_importlib_metadata_give_its_answer(
    site: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = site
    _dist(first, "dorm_alpha-1.0.dist-info", "[dorm]\nalpha = a.plugin\n")
    monkeypatch.setattr(sys, "path", [*sys.path, str(_zip_site(second))])
    with pytest.raises(eps._Unsupported, match="a zip file"):
        eps._scan("dorm")
    assert [tuple(ep) for ep in eps.entry_points("dorm")] == _importlib("dorm")
    assert [ep.name for ep in eps.entry_points("dorm")] == ["alpha", "zipped"]


@pytest.mark.parametrize(
    ("dirname", "headers", "reason"),
    [
        ("DORM_UP-1.0.DIST-INFO", None, "upper-case suffix"),
        ("dorm_terse-1.0.dist-info", "Name:dorm-terse\nVersion:1.0\n", "no Name and Version"),
    ],
)
def test_unusual_distributions_are_read_by_importlib_metadata(
    site: tuple[Path, Path], dirname: str, headers: str | None, reason: str
) -> None:
    first, _second = site
    _dist(first, "dorm_alpha-1.0.dist-info", "[dorm]\nalpha = a.plugin\n")
    _dist(first, dirname, "[dorm]\nunusual = u.plugin\n", headers)
    with pytest.raises(eps._Unsupported, match=reason):
        eps._scan("dorm")
    found = eps.entry_points("dorm")
    assert [tuple(ep) for ep in found] == _importlib("dorm")
    assert [ep.name for ep in found] == ["alpha", "unusual"]


def test_a_malformed_line_raises_as_importlib_metadata_does(site: tuple[Path, Path]) -> None:
    first, _second = site
    _dist(first, "dorm_bad-1.0.dist-info", "[console_scripts]\nno equals sign\n")
    with pytest.raises(eps._Unsupported):
        eps._scan("dorm")
    with pytest.raises(Exception) as expected:  # TypeError on 3.11
        _importlib("dorm")
    with pytest.raises(expected.type):
        eps.entry_points("dorm")


def test_a_finder_with_its_own_distributions_is_asked_through_importlib_metadata(
    site: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib.metadata import Distribution, DistributionFinder

    first, second = site
    _dist(first, "dorm_alpha-1.0.dist-info", "[dorm]\nalpha = a.plugin\n")
    elsewhere = _dist(second / "elsewhere", "dorm_remote-3.0.dist-info", "[dorm]\nremote = r\n")

    class Finder(DistributionFinder):
        def find_distributions(self, context: object = None) -> list[Distribution]:
            return [Distribution.at(elsewhere)]

    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, Finder()])
    with pytest.raises(eps._Unsupported, match="finds distributions of its own"):
        eps._scan("dorm")
    assert [(ep.name, ep.distribution) for ep in eps.entry_points("dorm")] == [
        ("alpha", "dorm-alpha"),
        ("remote", "dorm-remote"),
    ]


def test_load_returns_the_module_or_its_attribute() -> None:
    assert EntryPoint("x", "os.path", "d", "1").load() is os.path
    assert EntryPoint("x", "os.path:join", "d", "1").load() is os.path.join
    assert EntryPoint("x", "dorm.entry_points:EntryPoint.load [x]", "d", "1").load() is (
        EntryPoint.load
    )
    with pytest.raises(ValueError, match=r"entry point 'x' of d: 'not a value!' is not"):
        EntryPoint("x", "not a value!", "d", "1").load()
