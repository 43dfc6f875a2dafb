"""Active/passive routing: writes to the PostgreSQL primary, reads to its streaming replicas.

Usage::

    import dorm
    from dorm.contrib.active_passive import ActivePassiveRouter

    router = ActivePassiveRouter(
        aliases=["node_a", "node_b"],      # a primary and a hot standby, in any order
        probe_seconds=10.0,                # each alias probed at most this often
        sticky_seconds=2.0,                # read-your-writes: reads follow a write
        max_replica_lag_seconds=5.0,       # skip standbys replaying further behind
    )
    dorm.configure(
        DATABASES={"node_a": {...}, "node_b": {...}},
        DATABASE_ROUTERS=[router],
    )
    Article.objects.create(title="x")       # the primary, wherever it is now
    list(Article.objects.all())             # a replica (the primary if none is healthy)
    with dorm.transaction.atomic(using=router.primary):
        Article.objects.count()             # inside a transaction: the primary

Each alias is probed by a thread of its own (``pg_is_in_recovery()``, the replay lag);
queries read the last result and never probe. A statement that fails because its server
went away or turned read-only marks the alias stale and re-probes every alias at once;
the statement is not retried. ``dorm routing status`` prints what the probes found.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dorm.plugins import lazy_exports

if TYPE_CHECKING:
    from dorm.contrib.active_passive.exceptions import (
        NoPrimaryError,
        RoutingError,
    )
    from dorm.contrib.active_passive.probe import (
        AliasStatus,
    )
    from dorm.contrib.active_passive.router import (
        ActivePassiveRouter,
    )

# Loaded on first use: the plugin's entry point imports this package, and a plugin must
# add nothing to the cost of ``import dorm`` (or of defining a model) until it is used.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "NoPrimaryError": "dorm.contrib.active_passive.exceptions",
        "RoutingError": "dorm.contrib.active_passive.exceptions",
        "AliasStatus": "dorm.contrib.active_passive.probe",
        "ActivePassiveRouter": "dorm.contrib.active_passive.router",
    },
)


__version__ = "1.0.0"

__all__ = ["ActivePassiveRouter", "AliasStatus", "NoPrimaryError", "RoutingError", "__version__"]
