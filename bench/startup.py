"""Start-up cost with every distribution of the workspace installed.

``make bench-startup`` (or ``python bench/startup.py``). Each figure is the median (and the
minimum) of ``RUNS`` fresh processes, timed around the work itself inside the process
(interpreter start-up excluded), except the ``dorm`` commands, timed as whole commands:

- ``import dorm``: targets 60 ms at most;
- ``plugins loaded``: the first model class, hook or query loads every installed plugin
  through its entry point; a plugin must add (almost) nothing until it is used;
- ``dorm --help``: the whole command, plugins' subcommands listed; target 100 ms;
- ``dorm worker --help``: the whole command, one plugin's subcommand (for scale).

The processes run with bytecode caching on, as an installed wheel runs (pip compiles
``.pyc`` files at install): ``PYTHONDONTWRITEBYTECODE`` is dropped from their environment
and one unmeasured round writes the caches first. Compiling some 200 modules from source
at every start would triple every figure here.

Results go to ``bench/results/startup.md``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RUNS = 21
PROBE = """
import time
t0 = time.perf_counter()
import dorm
t1 = time.perf_counter()
from dorm import plugins
plugins.get_plugin_manager()
t2 = time.perf_counter()
print(t1 - t0, t2 - t1, len(plugins.plugin_infos()))
"""


ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def main() -> int:
    imports, loads, helps, command_helps, bares = [], [], [], [], []
    count = 0
    dorm_cli = str(Path(sys.executable).parent / "dorm")
    for round_ in range(RUNS + 1):
        out = subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, env=ENV
        ).stdout.split()
        help_ = _timed([dorm_cli, "--help"])
        command_help = _timed([dorm_cli, "worker", "--help"])
        bare = _timed([sys.executable, "-c", "pass"])
        if round_ == 0:
            continue  # writes the bytecode caches
        imports.append(float(out[0]))
        loads.append(float(out[1]))
        count = int(out[2])
        helps.append(help_)
        command_helps.append(command_help)
        bares.append(bare)
    rows = [
        ("import dorm", imports, 0.060),
        (f"plugins loaded ({count} registered)", loads, None),
        ("dorm --help (whole command)", helps, 0.100),
        ("dorm worker --help (whole command)", command_helps, None),
        ("python -c pass (for scale)", bares, None),
    ]
    lines = [
        f"# Start-up with every workspace distribution installed (median of {RUNS} processes)",
        "",
        f"Machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end "
        "(the minimum shows the cost without the noise of other work).",
        "",
        "| what | median | min | target |",
        "|---|---|---|---|",
        *[_row(name, times, target) for name, times, target in rows],
    ]
    text = "\n".join(lines) + "\n"
    (BENCH / "results").mkdir(exist_ok=True)
    (BENCH / "results" / "startup.md").write_text(text)
    print(text)
    return 0


def _row(name: str, times: list[float], target: float | None) -> str:
    median = statistics.median(times)
    over = " (over target)" if target is not None and median > target else ""
    shown = "-" if target is None else f"{target * 1000:.0f} ms"
    return f"| {name} | {median * 1000:.1f} ms{over} | {min(times) * 1000:.1f} ms | {shown} |"


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True, env=ENV)
    return time.perf_counter() - start


if __name__ == "__main__":
    raise SystemExit(main())
