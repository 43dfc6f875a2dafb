"""Batch the lookups of a loop into one query: queue keys, ``flush()``, read them back.

Usage::

    from dorm.contrib.sync_dataloader import SyncDataLoader

    loader = SyncDataLoader(lambda ids: Author.objects.in_bulk(ids))
    for book in books:
        loader.load(book.author_id)        # queued
    loader.flush()                         # one query for every author
    for book in books:
        author = loader.load(book.author_id)

The async twin, batching every key asked for in one event-loop tick, is
``dorm.contrib.dataloader.DataLoader``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dorm.plugins import lazy_exports

if TYPE_CHECKING:
    from dorm.contrib.sync_dataloader.exceptions import DataLoaderError
    from dorm.contrib.sync_dataloader.loader import SyncDataLoader

# Loaded on first use: the plugin's entry point imports this package, and a plugin must
# add nothing to the cost of ``import dorm`` (or of ``dorm --help``) until it is used.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "DataLoaderError": "dorm.contrib.sync_dataloader.exceptions",
        "SyncDataLoader": "dorm.contrib.sync_dataloader.loader",
    },
)

# The version of the dorm-async distribution (this module is its lightest import).
__version__ = "1.0.0"

__all__ = ["DataLoaderError", "SyncDataLoader", "__version__"]
