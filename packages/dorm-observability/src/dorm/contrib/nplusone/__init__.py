"""N+1 query detection, with the eager load that fixes each finding.

Usage::

    from dorm.contrib.nplusone import detect, suggest_fix

    with detect() as scope:                      # strict=True raises NPlusOneError
        for book in Book.objects.all():
            print(book.author.name)              # one query per book
    finding = scope.findings[0]
    print(finding.fix)       # add .select_related("author") to the Book query iterated at app.py:12
    suggest_fix(finding.sql, model_hint=Book).code   # 'select_related("author")'

Also: ``NPlusOneMiddleware(app)`` for WSGI/ASGI apps and the pytest fixture
``dorm_nplusone`` (``-p dorm.contrib.nplusone.pytest_plugin``).
"""

from __future__ import annotations

from dorm.contrib.nplusone.detector import Detection, Finding, detect, shape_of
from dorm.contrib.nplusone.exceptions import NPlusOneError
from dorm.contrib.nplusone.fix import Fix, suggest_fix
from dorm.contrib.nplusone.location import CodeLocation, caller_location
from dorm.contrib.nplusone.middleware import NPlusOneMiddleware

__version__ = "1.0.0"

__all__ = [
    "CodeLocation",
    "Detection",
    "Finding",
    "Fix",
    "NPlusOneError",
    "NPlusOneMiddleware",
    "__version__",
    "caller_location",
    "detect",
    "shape_of",
    "suggest_fix",
]
