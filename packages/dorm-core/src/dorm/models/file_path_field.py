"""``FilePathField``: a CharField holding a path chosen under a directory, as Django's."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

from dorm.models.fields import CharField

__all__ = ["FilePathField"]


class FilePathField(CharField):
    """A path under ``path`` (a directory, or a callable returning one).

    ``match`` (a regular expression searched in the file name), ``recursive``,
    ``allow_files`` and ``allow_folders`` describe which paths are offered:
    :meth:`list_paths` lists them, as Django's form field does. The column is a
    ``varchar(max_length)`` (100 unless given); the database does not check the file
    exists, and neither does Django.
    """

    internal_type = "FilePathField"

    def __init__(
        self,
        verbose_name: str | None = None,
        name: str | None = None,
        path: str | Callable[[], str] = "",
        match: str | None = None,
        recursive: bool = False,
        allow_files: bool = True,
        allow_folders: bool = False,
        **kwargs: Any,
    ) -> None:
        if not allow_files and not allow_folders:
            raise ValueError(
                f"FilePathField {name or verbose_name or ''!r}: allow_files and allow_folders "
                f"are both False, so no path can be chosen; set one of them to True"
            )
        if match is not None:
            try:
                re.compile(match)
            except re.error as exc:
                raise ValueError(
                    f"FilePathField: match={match!r} is not a regular expression: {exc}"
                ) from None
        self.path = path
        self.match = match
        self.recursive = recursive
        self.allow_files = allow_files
        self.allow_folders = allow_folders
        kwargs.setdefault("max_length", 100)
        super().__init__(verbose_name, name, **kwargs)

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("max_length") == 100:
            del kwargs["max_length"]
        for key, default in (
            ("path", ""),
            ("match", None),
            ("recursive", False),
            ("allow_files", True),
            ("allow_folders", False),
        ):
            value = getattr(self, key)
            if value != default:
                kwargs[key] = value
        return name, path, args, kwargs

    def list_paths(self) -> list[str]:
        """The full paths this field offers, sorted: files and/or folders under ``path``
        whose name matches ``match`` (searched), descending into folders if ``recursive``."""
        root = self.path() if callable(self.path) else self.path
        pattern = re.compile(self.match) if self.match is not None else None
        found: list[str] = []

        def wanted(entry: str, is_dir: bool) -> bool:
            if is_dir and not self.allow_folders or not is_dir and not self.allow_files:
                return False
            return pattern is None or pattern.search(entry) is not None

        if self.recursive:
            for top, dirs, files in os.walk(root):
                found += [os.path.join(top, d) for d in dirs if wanted(d, True)]
                found += [os.path.join(top, f) for f in files if wanted(f, False)]
        else:
            with os.scandir(root) as entries:
                found = [e.path for e in entries if wanted(e.name, e.is_dir())]
        return sorted(found)
