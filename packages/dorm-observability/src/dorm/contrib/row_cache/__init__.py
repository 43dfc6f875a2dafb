"""A per-model LRU cache of rows by primary key, kept right by dorm's write hooks.

Usage::

    from dorm.contrib.row_cache import RowCache

    authors = RowCache(Author, maxsize=1000)
    ada = authors.get(1)          # a query the first time, a dict lookup after
    ada.name = "Ada L."
    ada.save()                    # drops the entry: the next get() reads the new row
    authors.info()                # CacheInfo(hits=..., misses=..., invalidations=..., ...)
"""

from __future__ import annotations

from dorm.contrib.row_cache.cache import CacheInfo, RowCache

__version__ = "1.0.0"

__all__ = ["CacheInfo", "RowCache", "__version__"]
