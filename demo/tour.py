"""A short tour of dorm as it stands: run by ``make demo``; each feature adds a few lines."""

from __future__ import annotations

import logging
import sys
from typing import Any

import dorm
from dorm import plugins, signals
from dorm.cli import main
from dorm.plugins import hookimpl


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


class Note:
    """Stands in for a model until the ORM lands; signals do not care what they carry."""

    def __init__(self, title: str) -> None:
        self.title = title

    def __repr__(self) -> str:
        return f"<Note {self.title!r}>"


class AuditPlugin:
    """A plugin registered at runtime: it sees saves and queries like an installed one."""

    def __init__(self) -> None:
        self.saved: list[str] = []

    @hookimpl
    def dorm_post_save(self, sender: type, instance: Any, created: bool) -> None:
        self.saved.append(f"{'created' if created else 'updated'} {instance!r}")

    @hookimpl
    def dorm_post_query(self, sql: str, duration: float) -> None:
        raise RuntimeError("this tracer is broken on purpose")


def run() -> None:
    step(f"dorm {dorm.__version__}: the plugins this environment has")
    main(["plugins"])

    step("a receiver on post_save, and a plugin implementing dorm_post_save")
    audit = AuditPlugin()
    plugins.register(audit, name="audit")

    def on_save(sender: type, instance: Any, **kwargs: Any) -> None:
        print(f"   receiver: post_save from {sender.__name__} for {instance!r}")

    signals.post_save.connect(on_save, sender=Note)
    for created, title in [(True, "hello"), (False, "hello, again")]:
        signals.post_save.send(
            sender=Note,
            instance=Note(title),
            created=created,
            raw=False,
            using="default",
            update_fields=None,
        )
    print(f"   plugin saw: {audit.saved}")

    step("a broken observer hook is logged, never raised (see docs/hooks.md)")
    logging.basicConfig(stream=sys.stdout, format="   log %(levelname)s %(name)s: %(message)s")
    plugins.notify(
        "dorm_post_query",
        alias="default",
        vendor="sqlite",
        sql="SELECT 1",
        params=(),
        duration=0.001,
        rowcount=1,
        error=None,
    )
    print("   ...and the program went on", flush=True)

    step("the CLI: unknown commands are one line and exit code 2")
    code = main(["migrat"])
    sys.stderr.flush()
    print(f"   exit code {code}")
    plugins.unregister("audit")


if __name__ == "__main__":
    run()
