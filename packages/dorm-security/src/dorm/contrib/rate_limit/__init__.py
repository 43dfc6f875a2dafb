"""Token-bucket rate limiting, in one process or shared through PostgreSQL.

Usage::

    from dorm.contrib.rate_limit import PostgresStore, RateLimited, TokenBucket, rate_limited

    bucket = TokenBucket(rate_per_second=10, burst=20)      # in-process, thread-safe

    @rate_limited(bucket, key=lambda req: req.ip)
    def signup(req): ...

    shared = TokenBucket(5, 10, store=PostgresStore())       # one limit for every process
    shared.take("tenant-7").allowed

A refused call raises ``RateLimited`` with ``retry_after`` (seconds).
"""

from __future__ import annotations

from dorm.contrib.rate_limit.bucket import TokenBucket, rate_limited
from dorm.contrib.rate_limit.exceptions import RateLimited
from dorm.contrib.rate_limit.stores import BucketStore, Decision, MemoryStore, PostgresStore

__version__ = "1.0.0"

__all__ = [
    "BucketStore",
    "Decision",
    "MemoryStore",
    "PostgresStore",
    "RateLimited",
    "TokenBucket",
    "__version__",
    "rate_limited",
]
