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

from dorm.contrib.sync_dataloader.exceptions import DataLoaderError
from dorm.contrib.sync_dataloader.loader import SyncDataLoader

# The version of the dorm-async distribution (this module is its lightest import).
__version__ = "1.0.0"

__all__ = ["DataLoaderError", "SyncDataLoader", "__version__"]
