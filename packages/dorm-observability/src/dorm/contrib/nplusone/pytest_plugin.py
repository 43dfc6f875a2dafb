"""The pytest fixture ``dorm_nplusone``: a test fails when it runs an N+1 query pattern.

Enable with ``-p dorm.contrib.nplusone.pytest_plugin`` or
``pytest_plugins = ["dorm.contrib.nplusone.pytest_plugin"]``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dorm.contrib.nplusone.detector import Detection, detect

__all__ = ["dorm_nplusone"]


@pytest.fixture
def dorm_nplusone() -> Iterator[Detection]:
    """A ``detect()`` scope around the test; the test fails if the scope found anything."""
    scope = detect(log=False)
    with scope:
        yield scope
    if scope.findings:
        pytest.fail(
            "dorm_nplusone: " + "; ".join(str(f) for f in scope.findings),
            pytrace=False,
        )
