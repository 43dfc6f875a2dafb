"""Guards for the house rules of every distribution under packages/ (STYLE.md sections 1, 2, 9)."""

from __future__ import annotations

import ast
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = sorted(p.parent for p in (REPO / "packages").glob("*/pyproject.toml"))
HELLO = REPO / "tests" / "fixtures" / "dorm-hello"
ALL_DIRS = [*PACKAGE_DIRS, HELLO]


def _pyproject(pkg: Path) -> dict:
    return tomllib.loads((pkg / "pyproject.toml").read_text())


def _contrib_names(pkg: Path) -> list[str]:
    contrib = pkg / "src" / "dorm" / "contrib"
    return sorted(p.name for p in contrib.iterdir() if p.is_dir()) if contrib.is_dir() else []


def test_core_exists_and_every_package_is_named_after_its_folder() -> None:
    assert REPO / "packages" / "dorm-core" in PACKAGE_DIRS
    for pkg in PACKAGE_DIRS:
        assert _pyproject(pkg)["project"]["name"] == pkg.name
        assert (pkg / "README.md").is_file() and (pkg / "CHANGELOG.md").is_file(), pkg.name
        tests_dir = REPO / "tests" / pkg.name.removeprefix("dorm-")
        assert tests_dir.is_dir(), f"{pkg.name} has no tests folder {tests_dir.name}/"


@pytest.mark.parametrize("pkg", ALL_DIRS, ids=lambda p: p.name)
def test_no_init_in_contrib_and_only_core_owns_dorm_init(pkg: Path) -> None:
    src = pkg / "src" / "dorm"
    assert not (src / "contrib" / "__init__.py").exists()
    if pkg.name == "dorm-core":
        assert (src / "__init__.py").is_file()
        assert (src / "py.typed").is_file()
    else:
        assert not (src / "__init__.py").exists(), f"{pkg.name} must not ship dorm/__init__.py"
        names = _contrib_names(pkg)
        assert names, f"{pkg.name} ships no dorm/contrib/<name>/"
        for name in names:
            assert (src / "contrib" / name / "__init__.py").is_file()
            assert (src / "contrib" / name / "py.typed").is_file()


def test_core_init_extends_path_first() -> None:
    tree = ast.parse((REPO / "packages/dorm-core/src/dorm/__init__.py").read_text())
    body = [
        node
        for node in tree.body
        if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")
    ]
    first, second = body[0], body[1]
    assert isinstance(first, ast.ImportFrom) and first.module == "pkgutil"
    assert [a.name for a in first.names] == ["extend_path"]
    assert ast.unparse(second) == "__path__ = extend_path(__path__, __name__)"


@pytest.mark.parametrize("pkg", ALL_DIRS, ids=lambda p: p.name)
def test_pyproject_follows_the_wheel_rules(pkg: Path) -> None:
    data = _pyproject(pkg)
    project, hatch = data["project"], data["tool"]["hatch"]
    assert project["dynamic"] == ["version"]
    assert data["build-system"]["build-backend"] == "hatchling.build"
    assert "dev-mode-exact" not in (pkg / "pyproject.toml").read_text()
    wheel = hatch["build"]["targets"]["wheel"]
    if pkg.name == "dorm-core":
        assert hatch["version"]["path"] == "src/dorm/__init__.py"
        assert wheel["packages"] == ["src/dorm"]
        assert "pluggy" in " ".join(project["dependencies"])
        extras = " ".join(project["optional-dependencies"]["postgresql"])
        assert "psycopg" in extras and "psycopg-pool" in extras and "asyncpg" in extras
        assert project["requires-python"] == ">=3.11"
        return
    names = _contrib_names(pkg)
    assert wheel["sources"] == ["src"]
    assert sorted(wheel["only-include"]) == [f"src/dorm/contrib/{n}" for n in names]
    assert hatch["version"]["path"] in [f"src/dorm/contrib/{n}/__init__.py" for n in names]
    core_deps = [d for d in project["dependencies"] if d.startswith("dorm-core")]
    assert core_deps and "==" not in core_deps[0] and ">=" in core_deps[0]
    assert project["entry-points"]["dorm"], f"{pkg.name} registers no 'dorm' entry point"


@pytest.mark.parametrize("pkg", PACKAGE_DIRS, ids=lambda p: p.name)
def test_installed_entry_points_load(pkg: Path) -> None:
    dist = metadata.distribution(pkg.name)
    assert dist.version == _pyproject_version(pkg)
    eps = [ep for ep in dist.entry_points if ep.group in ("dorm", "console_scripts")]
    assert eps, f"{pkg.name} declares no entry point"
    for ep in eps:
        assert ep.load() is not None


def _pyproject_version(pkg: Path) -> str:
    path = pkg / _pyproject(pkg)["tool"]["hatch"]["version"]["path"]
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__version__":
            return str(ast.literal_eval(node.value))
    raise AssertionError(f"{path} has no __version__")


@pytest.mark.slow
def test_each_wheel_holds_only_its_own_tree(wheels: dict[str, Path]) -> None:
    for name, wheel in wheels.items():
        with zipfile.ZipFile(wheel) as zf:
            files = [f for f in zf.namelist() if ".dist-info/" not in f]
        assert files, f"{name}: empty wheel"
        assert "dorm/contrib/__init__.py" not in files
        if name == "dorm-core":
            assert "dorm/__init__.py" in files and "dorm/py.typed" in files
            assert all(f.startswith("dorm/") for f in files), files
            assert not any(f.startswith("dorm/contrib/") for f in files)
        else:
            pkg = next(d for d in ALL_DIRS if d.name == name)
            allowed = tuple(f"dorm/contrib/{n}/" for n in _contrib_names(pkg))
            assert all(f.startswith(allowed) for f in files), files
