"""Two-phase commit across PostgreSQL databases: all commit or none does.

Usage::

    from dorm.contrib.two_phase import two_phase_commit

    with two_phase_commit(["primary", "warehouse"]) as txn:
        txn.execute("primary", "INSERT INTO orders (sku) VALUES (%s)", ["A-1"])
        txn.execute("warehouse", "UPDATE stock SET qty = qty - 1 WHERE sku = %s", ["A-1"])
        Order.objects.using("primary").create(sku="A-2")     # ORM calls join too

On a clean exit every alias runs ``PREPARE TRANSACTION``, a decision record is written,
then every alias runs ``COMMIT PREPARED``. ``dorm two-phase recover`` finishes what a
process that died in between left prepared. Each server needs
``max_prepared_transactions`` above 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dorm.plugins import lazy_exports

if TYPE_CHECKING:
    from dorm.contrib.two_phase.coordinator import (
        DECISION_TABLE,
        TwoPhaseTransaction,
        two_phase_commit,
    )
    from dorm.contrib.two_phase.exceptions import (
        TwoPhaseCommitError,
        TwoPhaseConfigurationError,
        TwoPhaseError,
    )
    from dorm.contrib.two_phase.recovery import (
        Recovered,
        recover,
    )

# Loaded on first use: the plugin's entry point imports this package, and a plugin must
# add nothing to the cost of ``import dorm`` (or of defining a model) until it is used.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "DECISION_TABLE": "dorm.contrib.two_phase.coordinator",
        "TwoPhaseTransaction": "dorm.contrib.two_phase.coordinator",
        "two_phase_commit": "dorm.contrib.two_phase.coordinator",
        "TwoPhaseCommitError": "dorm.contrib.two_phase.exceptions",
        "TwoPhaseConfigurationError": "dorm.contrib.two_phase.exceptions",
        "TwoPhaseError": "dorm.contrib.two_phase.exceptions",
        "Recovered": "dorm.contrib.two_phase.recovery",
        "recover": "dorm.contrib.two_phase.recovery",
    },
)


__all__ = [
    "DECISION_TABLE",
    "Recovered",
    "TwoPhaseCommitError",
    "TwoPhaseConfigurationError",
    "TwoPhaseError",
    "TwoPhaseTransaction",
    "recover",
    "two_phase_commit",
]
