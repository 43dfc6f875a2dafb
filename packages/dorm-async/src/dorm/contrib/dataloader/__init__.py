"""Async data loaders: every key awaited in one event-loop tick is fetched by one call.

Usage::

    import asyncio
    from dorm.contrib.dataloader import DataLoader

    async def resolve_author(loader, book):
        return await loader.load(book.author_id)

    loader = DataLoader(lambda ids: Author.objects.ain_bulk(ids))   # one per request
    authors = await asyncio.gather(*(resolve_author(loader, b) for b in books))  # 1 query

``await loader.load_many(keys)`` loads several keys at once. The sync variant, which
queues keys until ``flush()``, is ``dorm.contrib.sync_dataloader.SyncDataLoader``.
"""

from __future__ import annotations

from dorm.contrib.dataloader.loader import DataLoader
from dorm.contrib.sync_dataloader.exceptions import DataLoaderError

__all__ = ["DataLoader", "DataLoaderError"]
