"""System-versioned tables: the database records every version of every row.

Usage::

    import datetime
    import dorm
    from dorm.contrib.temporal import as_of, temporal
    from dorm.migrations.schema import SchemaEditor

    @temporal
    class Article(dorm.Model):
        title = dorm.CharField(max_length=200)

    with SchemaEditor() as editor:          # or makemigrations + migrate
        editor.create_model(Article)
        editor.create_model(Article._temporal_model)   # both tables: triggers installed

    article = Article.objects.create(title="draft")
    t = datetime.datetime.now(datetime.UTC)
    with temporal.context(user="alice", reason="copy edit"):
        Article.objects.filter(pk=article.pk).update(title="final")

    as_of(Article, t).get(pk=article.pk).title                     # "draft"
    [v.operation for v in Article.history.filter(pk=article.pk)]   # ["insert", "update"]

Triggers capture every write path, raw SQL included: save, create, delete, bulk_create,
bulk_update, QuerySet.update / delete, upserts and cascades. ``temporal.context`` is
``dorm.contrib.temporal.context``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# Not lazy: ``context`` is also a submodule's name, and importing that submodule (tracking
# does) would bind this package's ``context`` to the module if it were not already set.
from dorm.contrib.temporal.context import context, current_context
from dorm.contrib.temporal.exceptions import TemporalError
from dorm.plugins import lazy_exports

if TYPE_CHECKING:
    from dorm.contrib.temporal.reads import (
        AsOfQuerySet,
        HistoryManager,
        HistoryQuerySet,
        as_of,
    )
    from dorm.contrib.temporal.tracking import is_tracked, temporal, tracked_models

# Loaded on first use: the plugin's entry point imports this package, and a plugin must
# add nothing to the cost of ``import dorm`` (or of ``dorm --help``) until it is used.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "AsOfQuerySet": "dorm.contrib.temporal.reads",
        "HistoryManager": "dorm.contrib.temporal.reads",
        "HistoryQuerySet": "dorm.contrib.temporal.reads",
        "as_of": "dorm.contrib.temporal.reads",
        "is_tracked": "dorm.contrib.temporal.tracking",
        "temporal": "dorm.contrib.temporal.tracking",
        "tracked_models": "dorm.contrib.temporal.tracking",
    },
)

__version__ = "1.0.0"

__all__ = [
    "AsOfQuerySet",
    "HistoryManager",
    "HistoryQuerySet",
    "TemporalError",
    "__version__",
    "as_of",
    "context",
    "current_context",
    "is_tracked",
    "temporal",
    "tracked_models",
]
