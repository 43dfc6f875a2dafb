"""``dorm plugins``: the installed plugin distributions and the hooks each implements."""

from __future__ import annotations

import argparse
import json

from dorm import plugins
from dorm.cli.command import Command

__all__ = ["PluginsCommand"]


class PluginsCommand(Command):
    name = "plugins"
    help = "list the installed dorm plugins, their versions and the hooks they implement"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--format", choices=["text", "json"], default="text", help="output format"
        )

    def handle(self, args: argparse.Namespace) -> int:
        # Core registers several modules; show them as the one distribution they are.
        infos: list[plugins.PluginInfo] = []
        hooks: dict[str, list[str]] = {}
        for info in plugins.plugin_infos():
            if info.distribution == "dorm-core" and info.entry_point is None:
                if "dorm-core" not in hooks:
                    infos.append(info._replace(name="dorm-core"))
                    hooks["dorm-core"] = []
                hooks["dorm-core"] = sorted({*hooks["dorm-core"], *plugins.hooks_of(info.name)})
            else:
                infos.append(info)
                hooks[info.name] = plugins.hooks_of(info.name)
        if args.format == "json":
            rows = [{**info._asdict(), "hooks": hooks[info.name]} for info in infos]
            print(json.dumps(rows, indent=2))
            return 0
        for info in infos:
            if info.distribution is None:
                print(f"{info.name}  (registered at runtime)")
            elif info.entry_point:
                print(f"{info.distribution} {info.version}  (entry point {info.entry_point})")
            else:
                print(f"{info.distribution} {info.version}  (built in)")
            print(f"    hooks: {', '.join(hooks[info.name]) or '-'}")
        return 0
