"""The errors of dorm.contrib.rate_limit."""

from __future__ import annotations

from dorm.exceptions import DormError

__all__ = ["RateLimited"]


class RateLimited(DormError):
    """The bucket of ``key`` is empty; ``retry_after`` seconds until the call would pass."""

    def __init__(self, bucket: str, key: str, retry_after: float) -> None:
        self.bucket = bucket
        self.key = key
        self.retry_after = retry_after
        super().__init__(
            f"rate limit of bucket {bucket!r} exceeded for key {key!r}; "
            f"retry after {retry_after:.3f} s"
        )
