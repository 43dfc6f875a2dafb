"""Start-up stays small with every distribution installed: a plugin costs nothing until used.

Each check runs in a fresh interpreter, so that what the test process imported earlier
cannot hide an import.
"""

from __future__ import annotations

import subprocess
import sys

# Modules a plugin may import when its entry point loads, besides the entry-point module
# and its packages: exception classes, and names a package binds eagerly because a
# submodule of the same name would otherwise shadow them.
_EAGER = {"dorm.contrib.tasks.task", "dorm.contrib.temporal.context"}


def _python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_loading_the_plugins_imports_only_their_entry_points() -> None:
    code = (
        "import sys\n"
        "from dorm import plugins\n"
        "plugins.get_plugin_manager()\n"
        "print(*sorted(m for m in sys.modules if m.startswith('dorm.contrib.')))\n"
        "print(*sorted(i.entry_point.split(' = ')[1] for i in plugins.plugin_infos() "
        "if i.entry_point))\n"
    )
    loaded_line, entry_line = _python(code).splitlines()
    loaded, entry_points = set(loaded_line.split()), set(entry_line.split())
    assert len(entry_points) >= 10  # every workspace distribution has one
    allowed = set(_EAGER)
    for module in entry_points:
        parts = module.split(".")
        allowed.update(".".join(parts[:n]) for n in range(3, len(parts) + 1))
    extra = {m for m in loaded - allowed if not m.endswith(".exceptions")}
    assert extra == set(), f"imported while the plugins load: {sorted(extra)}"
    assert entry_points <= loaded


def test_lazy_plugin_packages_still_export_their_names() -> None:
    import dorm.contrib.tasks.queue  # binds the submodule 'task' on the package
    import dorm.contrib.temporal.tracking  # binds the submodule 'context' on the package
    from dorm.contrib import sync_dataloader, tasks, temporal

    assert callable(tasks.task) and tasks.task.__module__ == "dorm.contrib.tasks.task"
    assert tasks.TaskQueue is dorm.contrib.tasks.queue.TaskQueue
    assert tasks.dead_letters.__module__ == "dorm.contrib.tasks.retry"
    assert callable(temporal.context) and temporal.context.__module__.endswith(".context")
    assert temporal.temporal is dorm.contrib.temporal.tracking.temporal
    assert temporal.temporal.context is temporal.context
    assert sync_dataloader.SyncDataLoader.__name__ == "SyncDataLoader"
    for package in (tasks, temporal, sync_dataloader):
        assert set(package.__all__) <= set(dir(package))
        for name in package.__all__:
            assert getattr(package, name) is not None
