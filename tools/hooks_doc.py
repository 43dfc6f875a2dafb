"""Write docs/hooks.md from the hookspecs in dorm/hookspecs.py (run: python tools/hooks_doc.py).

tests/core/test_hookspecs_meta.py fails when the file is not what this script writes, so
the reference cannot drift from the specs.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from dorm import hookspecs

DOC = Path(__file__).resolve().parent.parent / "docs" / "hooks.md"

HEADER = """\
# Hook reference

Every extension point of dorm is a [pluggy](https://pluggy.readthedocs.io/) hook of the
project `dorm`, specified in `dorm/hookspecs.py`. This page lists each one with its exact
signature and is generated from those specs by `tools/hooks_doc.py`. How to write and ship
a plugin: [plugins.md](plugins.md).

Implement a hook with `dorm.plugins.hookimpl` in the module your entry point names. An
implementation takes only the arguments it needs, by name; specs may gain arguments in
later releases but never rename one.

```python
from dorm.plugins import hookimpl

@hookimpl
def dorm_post_save(sender, instance, created):
    ...
```

## Kinds of hook and what happens when one raises

| kind | hooks | called how | when an implementation raises |
|---|---|---|---|
| registration | `dorm_register_*` | once, on first need; each returns a list that core combines and checks for collisions | `PluginError` naming the plugin and the hook; nothing any plugin returned is applied, so the ORM never runs with half a registry |
| first answer | `dorm_backend_for` | once per alias, on first use; the first non-None answer wins | the exception reaches the code that asked for the connection |
| setup | `dorm_connection_created`, `dorm_schema_*` | once per new connection, before it serves a query; once per table the schema editor creates, alters or drops | the exception reaches the code that asked for the connection, which is not used, or the caller of the schema editor, whose transaction rolls back |
| signal | model lifecycle and bulk operations | through `dorm.signals`: in-process receivers first, then the hook | the exception propagates to the caller, as a Django receiver's does: a `pre_*` hook aborts the operation before any SQL; a `post_*` hook inside `atomic()` rolls the block back; in autocommit mode the row written before a `post_*` hook stays written |
| observer | queries, transactions, pools | through `dorm.plugins.notify` | logged on the `dorm.plugins` logger at ERROR with the plugin and hook names and the traceback; the other implementations still run and the operation's outcome does not change. Wrapper implementations (`wrapper=True`) are rejected at load time for these |

Threads and event loops: every runtime hook fires on the thread that performs the
operation; in async code that is the event loop's thread, so an implementation must not
block (hand slow work to a thread or a queue).

Cost: a hook call costs about a microsecond. dorm calls runtime hooks once per operation
(per statement, per save, per transaction), never per row or per field access.

## Summary

| hook | kind |
|---|---|
"""

PHASES = {
    "dorm_register_commands": "Startup: CLI",
    "dorm_backend_for": "Startup: backends",
    "dorm_register_lookups": "Startup: schema and SQL (compiler extensions)",
    "dorm_connection_created": "Runtime: connections and pools",
    "dorm_schema_model_created": "Runtime: schema editor",
    "dorm_pre_query": "Runtime: queries",
    "dorm_transaction_started": "Runtime: transactions",
    "dorm_class_prepared": "Runtime: model lifecycle (the hooks behind `dorm.signals`)",
}


def kind(name: str) -> str:
    if name.startswith("dorm_register_"):
        return "registration"
    if name == "dorm_backend_for":
        return "first answer"
    if name in hookspecs.OBSERVER_HOOKS:
        return "observer"
    if name == "dorm_connection_created" or name.startswith("dorm_schema_"):
        return "setup"
    return "signal"


def signature(name: str) -> str:
    """``def name(arg: type, ...) -> type`` with the annotations as written in the spec."""
    sig = inspect.signature(getattr(hookspecs, name))
    args = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"def {name}({args}) -> {sig.return_annotation}"


def render() -> str:
    names = list(hookspecs.spec_names())
    parts = [HEADER, *(f"| `{n}` | {kind(n)} |\n" for n in names)]
    for name in names:
        if name in PHASES:
            parts.append(f"\n## {PHASES[name]}\n")
        doc = inspect.getdoc(getattr(hookspecs, name))
        parts.append(
            f"\n### `{name}`\n\n```python\n@hookspec\n{signature(name)}\n```\n\n"
            f"Kind: {kind(name)}.\n\n{doc}\n"
        )
    return "".join(parts)


if __name__ == "__main__":
    DOC.write_text(render())
    sys.stdout.write(f"wrote {DOC}\n")
