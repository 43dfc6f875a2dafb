"""The entry points of one group, read the way importlib.metadata reads them, without it.

Importing ``importlib.metadata`` costs about 20 ms (it imports email, pathlib, zipfile,
csv and importlib.resources), a fifth of the 100 ms that ``dorm --help`` may take with
every distribution installed; reading the same files takes under 2 ms. So the common
layout (directories on ``sys.path`` holding ``*.dist-info`` or ``*.egg-info``
directories, no import hook that finds distributions of its own) is read here, following
the importlib.metadata of CPython 3.11 to 3.13 step by step:

- the entries of ``sys.path`` in order, each directory's children in ``os.listdir``
  order; a name ending in ``.dist-info`` or ``.egg-info`` is a distribution whose name is
  the part before the first ``-``, normalised as PEP 503 has it (``-``, ``_`` and ``.``
  runs become ``_``, lower case);
- the first distribution of each name wins, whether or not it declares entry points;
- its ``entry_points.txt``: stripped lines, blank and ``#`` lines skipped, ``[group]``
  starts a section, every other line is ``name = value``;
- the distribution's name and version: the ``Name`` and ``Version`` headers of its
  ``METADATA`` (or ``PKG-INFO``), which must be among its first lines.

Anything else is left to importlib.metadata itself, which then decides: a zip file or an
``.egg`` directory on ``sys.path``, a finder on ``sys.meta_path`` with its own
``find_distributions``, an upper-case suffix, a file that cannot be decoded, a line
without ``=``, no ``Name: `` and ``Version: `` lines before the first blank line.
tests/core/test_entry_points.py checks both ways against importlib.metadata on the
installed distributions and on made-up ``sys.path`` layouts.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from typing import Any, NamedTuple

__all__ = ["EntryPoint", "entry_points"]

_NORMALIZE = re.compile(r"[-_.]+")
# importlib.metadata.EntryPoint.pattern: module, optional ":attr.attr", optional [extras].
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")
_SUFFIXES = (".dist-info", ".egg-info")


class EntryPoint(NamedTuple):
    """One entry point of a group and the distribution that declares it."""

    name: str
    value: str
    distribution: str
    version: str

    def load(self) -> Any:
        """Import the module ``value`` names and return it, or its attribute ``:attr``."""
        match = _VALUE.match(self.value)
        if match is None:
            raise ValueError(
                f"entry point {self.name!r} of {self.distribution}: {self.value!r} is not "
                f"'module' or 'module:attribute'"
            )
        found: Any = importlib.import_module(match.group("module"))
        for attr in filter(None, (match.group("attr") or "").split(".")):
            found = getattr(found, attr)
        return found


class _Unsupported(Exception):
    """A layout this module leaves to importlib.metadata."""


def entry_points(group: str) -> list[EntryPoint]:
    """Return the entry points of ``group`` of every installed distribution, in the order
    ``importlib.metadata.entry_points(group=group)`` gives them."""
    try:
        return _scan(group)
    except Exception:  # anything unusual: importlib.metadata reads it (or raises)
        return _from_importlib(group)


def _scan(group: str) -> list[EntryPoint]:
    """The fast path; raises ``_Unsupported`` (or any error) where importlib.metadata
    must decide."""
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if finder is not PathFinder and hasattr(finder, "find_distributions"):
            raise _Unsupported(f"{finder!r} finds distributions of its own")
    seen: set[str] = set()
    found: list[EntryPoint] = []
    for root in sys.path:
        if os.path.basename(root).lower().endswith(".egg"):
            raise _Unsupported(f"{root}: an egg on sys.path")
        try:
            children = os.listdir(root or ".")
        except (FileNotFoundError, PermissionError):
            continue  # importlib.metadata finds nothing there either
        except NotADirectoryError as exc:
            raise _Unsupported(f"{root}: a zip file on sys.path") from exc
        for child in children:
            low = child.lower()
            if not low.endswith(_SUFFIXES):
                continue
            if not child.endswith(_SUFFIXES):
                raise _Unsupported(f"{child}: an upper-case suffix")
            name = _NORMALIZE.sub("_", low.rpartition(".")[0].partition("-")[0])
            if name in seen:
                continue
            seen.add(name)
            path = os.path.join(root, child)
            pairs = [(n, v) for g, n, v in _sections(_read(path, "entry_points.txt")) if g == group]
            if pairs:
                dist, version = _name_and_version(path)
                found.extend(EntryPoint(n, v, dist, version) for n, v in pairs)
    return found


def _read(path: str, filename: str) -> str:
    """The file's text, or "" where importlib.metadata's ``read_text`` gives None."""
    try:
        with open(os.path.join(path, filename), encoding="utf-8") as file:
            return file.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        return ""


def _sections(text: str) -> list[tuple[str | None, str, str]]:
    """``(group, name, value)`` of every line, as importlib.metadata's ``Sectioned``."""
    group: str | None = None
    pairs: list[tuple[str | None, str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line.strip("[]")
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise _Unsupported(f"{line!r}: not 'name = value'")  # importlib raises
        pairs.append((group, name.strip(), value.strip()))
    return pairs


def _name_and_version(path: str) -> tuple[str, str]:
    """The ``Name`` and ``Version`` headers at the top of the distribution's metadata:
    importlib.metadata would parse the whole file with the email package."""
    found = _headers(_read(path, "METADATA") or _read(path, "PKG-INFO"))
    if len(found) < 2:
        raise _Unsupported(f"{path}: no Name and Version headers on the first lines")
    return found["Name"], found["Version"]


def _headers(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line:
            break  # the end of the headers
        key, sep, value = line.partition(": ")
        if sep and key in ("Name", "Version") and key not in found:
            found[key] = value.strip()
    return found


def _from_importlib(group: str) -> list[EntryPoint]:
    from importlib import metadata

    found = []
    for ep in metadata.entry_points(group=group):
        dist = ep.dist
        if dist is None:
            name, version = "<unknown distribution>", "?"
        else:
            headers = _headers(dist.read_text("METADATA") or dist.read_text("PKG-INFO") or "")
            if len(headers) < 2:
                headers = {"Name": str(dist.metadata["Name"]), "Version": str(dist.version)}
            name, version = headers["Name"], headers["Version"]
        found.append(EntryPoint(ep.name, ep.value, name, version))
    return found
