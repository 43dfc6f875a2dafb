"""Install every distribution under packages/ in editable mode, with all its extras.

Run by the Makefile with the virtual environment's interpreter. Reads each
``packages/*/pyproject.toml`` so that a new distribution needs no Makefile change.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def editable_args() -> list[str]:
    args: list[str] = []
    # dorm-core first: every plugin depends on it.
    dirs = sorted(
        (ROOT / "packages").glob("*/pyproject.toml"), key=lambda p: p.parent.name != "dorm-core"
    )
    for pyproject in dirs:
        project = tomllib.loads(pyproject.read_text())["project"]
        extras = sorted(project.get("optional-dependencies", {}))
        spec = str(pyproject.parent) + (f"[{','.join(extras)}]" if extras else "")
        args += ["-e", spec]
    return args


def main() -> int:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "-r",
        str(ROOT / "requirements-dev.txt"),
    ]
    cmd += editable_args()
    print("+", " ".join(cmd), flush=True)
    return subprocess.call(cmd)


if __name__ == "__main__":
    raise SystemExit(main())
