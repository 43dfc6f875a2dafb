"""The errors of dorm-async's data loaders (``SyncDataLoader`` and ``DataLoader``)."""

from __future__ import annotations

from dorm.exceptions import DormError

__all__ = ["DataLoaderError"]


class DataLoaderError(DormError):
    """A batch function broke its contract, or a loader was used outside its event loop."""
