"""The migration dependency graph across apps: plans forwards and backwards, leaves, state."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from dorm.migrations.exceptions import CircularDependencyError, NodeNotFoundError
from dorm.migrations.state import ProjectState

if TYPE_CHECKING:
    from dorm.migrations.migration import Migration

__all__ = ["MigrationGraph"]

Key = tuple[str, str]


class MigrationGraph:
    """Migrations keyed by ``(app_label, name)`` with parent (dependency) and child edges."""

    def __init__(self) -> None:
        self.nodes: dict[Key, Migration] = {}
        self.parents: dict[Key, set[Key]] = {}
        self.children: dict[Key, set[Key]] = {}

    def __contains__(self, key: object) -> bool:
        return key in self.nodes

    def add_node(self, key: Key, migration: Migration) -> None:
        self.nodes[key] = migration
        self.parents.setdefault(key, set())
        self.children.setdefault(key, set())

    def add_dependency(self, child: Key, parent: Key) -> None:
        """Make ``child`` depend on ``parent``; both must be nodes already."""
        if parent not in self.nodes:
            raise NodeNotFoundError(
                f"migration {child[0]}.{child[1]} depends on {parent[0]}.{parent[1]}, which "
                f"does not exist. Check the dependencies list of {child[0]}.{child[1]} (and "
                f"that {parent[0]!r} is in INSTALLED_APPS)"
            )
        self.parents[child].add(parent)
        self.children[parent].add(child)

    def app_nodes(self, app: str) -> list[Key]:
        return sorted(k for k in self.nodes if k[0] == app)

    def leaf_nodes(self, app: str | None = None) -> list[Key]:
        """Nodes with no child in their own app (for ``app``, or every app)."""
        return sorted(
            k
            for k in self.nodes
            if (app is None or k[0] == app) and not any(c[0] == k[0] for c in self.children[k])
        )

    def root_nodes(self, app: str | None = None) -> list[Key]:
        """Nodes with no parent in their own app."""
        return sorted(
            k
            for k in self.nodes
            if (app is None or k[0] == app) and not any(p[0] == k[0] for p in self.parents[k])
        )

    def _check(self, key: Key) -> None:
        if key not in self.nodes:
            raise NodeNotFoundError(f"no migration {key[0]}.{key[1]}")

    def _walk(self, start: Key, edges: dict[Key, set[Key]]) -> list[Key]:
        """Post-order over ``edges`` from ``start``: a node after everything it reaches."""
        self._check(start)
        order: list[Key] = []
        done: set[Key] = set()
        path: list[Key] = []
        on_path: set[Key] = set()
        stack: list[tuple[Key, list[Key]]] = [(start, sorted(edges[start]))]
        path.append(start)
        on_path.add(start)
        while stack:
            node, pending = stack[-1]
            if pending:
                nxt = pending.pop(0)
                if nxt in on_path:
                    cycle = [*path[path.index(nxt) :], nxt]
                    raise CircularDependencyError(
                        "migration dependencies form a cycle: "
                        + " -> ".join(f"{a}.{n}" for a, n in cycle)
                    )
                if nxt not in done:
                    stack.append((nxt, sorted(edges[nxt])))
                    path.append(nxt)
                    on_path.add(nxt)
                continue
            stack.pop()
            path.pop()
            on_path.discard(node)
            done.add(node)
            order.append(node)
        return order

    def forwards_plan(self, target: Key) -> list[Key]:
        """``target`` and everything it depends on, dependencies first."""
        return self._walk(target, self.parents)

    def backwards_plan(self, target: Key) -> list[Key]:
        """``target`` and everything depending on it, dependents first."""
        return self._walk(target, self.children)

    def check_cycles(self) -> None:
        for key in sorted(self.nodes):
            self.forwards_plan(key)

    def make_state(self, nodes: Iterable[Key] | None = None) -> ProjectState:
        """The project state after applying ``nodes`` and their dependencies (default:
        every leaf, i.e. the whole history)."""
        targets = list(self.leaf_nodes() if nodes is None else nodes)
        plan: list[Key] = []
        seen: set[Key] = set()
        for target in targets:
            for key in self.forwards_plan(target):
                if key not in seen:
                    seen.add(key)
                    plan.append(key)
        state = ProjectState()
        for key in plan:
            state = self.nodes[key].mutate_state(state)
        return state
