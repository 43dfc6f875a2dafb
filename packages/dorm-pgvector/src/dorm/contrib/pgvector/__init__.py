"""Vector columns, distance queries and hybrid vector + full-text rerank.

Usage::

    import dorm
    from dorm.contrib.pgvector import CosineDistance, HnswIndex, SearchVectorField, VectorField
    from dorm.contrib.pgvector.reranker import rerank

    class Document(dorm.Model):
        title = dorm.CharField(max_length=200)
        body = dorm.TextField()
        embedding = VectorField(dimensions=3)
        search_vector = SearchVectorField(source_fields=["title", "body"])

        class Meta:
            indexes = [HnswIndex(name="doc_embedding_hnsw", fields=["embedding"],
                                 opclasses=["vector_cosine_ops"])]

    nearest = Document.objects.order_by(CosineDistance("embedding", [1.0, 0.0, 0.0]))[:10]
    hits = rerank(Document, vector_field="embedding", text_field_tsv="search_vector",
                  query_vector=[1.0, 0.0, 0.0], query_text="vector search", limit=10)
    [(d.title, d.score) for d in hits]

PostgreSQL needs the pgvector extension (migration operation ``VectorExtension()``);
SQLite stores float32 blobs and computes distances with sqlite-vec or Python functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dorm.plugins import lazy_exports

if TYPE_CHECKING:
    from dorm.contrib.pgvector.exceptions import (
        PgvectorError,
        VectorExtensionMissingError,
    )
    from dorm.contrib.pgvector.expressions import (
        CosineDistance,
        Distance,
        L2Distance,
        MaxInnerProduct,
        TextRank,
    )
    from dorm.contrib.pgvector.fields import (
        SearchVectorField,
        VectorField,
    )
    from dorm.contrib.pgvector.indexes import (
        HnswIndex,
        IvfflatIndex,
        VectorExtension,
    )

# Loaded on first use: the plugin's entry point imports this package, and a plugin must
# add nothing to the cost of ``import dorm`` (or of defining a model) until it is used.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "PgvectorError": "dorm.contrib.pgvector.exceptions",
        "VectorExtensionMissingError": "dorm.contrib.pgvector.exceptions",
        "CosineDistance": "dorm.contrib.pgvector.expressions",
        "Distance": "dorm.contrib.pgvector.expressions",
        "L2Distance": "dorm.contrib.pgvector.expressions",
        "MaxInnerProduct": "dorm.contrib.pgvector.expressions",
        "TextRank": "dorm.contrib.pgvector.expressions",
        "SearchVectorField": "dorm.contrib.pgvector.fields",
        "VectorField": "dorm.contrib.pgvector.fields",
        "HnswIndex": "dorm.contrib.pgvector.indexes",
        "IvfflatIndex": "dorm.contrib.pgvector.indexes",
        "VectorExtension": "dorm.contrib.pgvector.indexes",
    },
)


__version__ = "1.0.0"

__all__ = [
    "CosineDistance",
    "Distance",
    "HnswIndex",
    "IvfflatIndex",
    "L2Distance",
    "MaxInnerProduct",
    "PgvectorError",
    "SearchVectorField",
    "TextRank",
    "VectorExtension",
    "VectorExtensionMissingError",
    "VectorField",
    "__version__",
]
