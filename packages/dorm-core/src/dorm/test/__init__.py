"""Testing helpers for applications and plugins built on dorm (see docs/testing.md).

::

    from dorm.test import assert_num_queries, register_plugin

    with assert_num_queries(1):
        titles = [book.title for book in Book.objects.all()]

    with register_plugin(my_hooks, name="audit"):
        Book.objects.create(title="Mort")     # my_hooks' dorm_post_save sees it

The pytest plugin (``dorm_db``, which yields a ``SessionDatabases``, and ``dorm_postgres``)
is ``dorm.test.pytest_plugin``; it is off unless a project enables it. Importing this
package loads neither pytest nor the plugin.
"""

from __future__ import annotations

from dorm.test.databases import SessionDatabases
from dorm.test.plugins import register_plugin
from dorm.test.queries import CaptureQueriesContext, assert_num_queries, assertNumQueries

__all__ = [
    "CaptureQueriesContext",
    "SessionDatabases",
    "assertNumQueries",
    "assert_num_queries",
    "register_plugin",
]
