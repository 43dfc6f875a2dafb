"""Hybrid search: the nearest rows by vector, re-ranked with their full-text rank.

``rerank()`` sends one statement. Its first step is the queryset's own SELECT (filters
applied) ordered by the distance with ``LIMIT candidates``, the shape an HNSW or IVFFlat
index serves; the text rank is then computed for those candidates only, and the two are
fused:

* ``mode="weighted"``: ``weight_vector * v + (1 - weight_vector) * t``, where
  ``v = (max_d - d) / (max_d - min_d)`` over the candidates (1 when all distances are
  equal) and ``t = rank / max_rank`` (0 when no candidate matches the text);
* ``mode="rrf"`` (reciprocal rank fusion): ``weight_vector / (rrf_k + vector_position)
  + (1 - weight_vector) / (rrf_k + text_position)``, positions counted from 1 among the
  candidates, the text term 0 for a candidate that does not match the text.

Ties are broken by primary key. Each returned instance carries ``score``,
``vector_distance`` and ``text_rank``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dorm.contrib.pgvector.expressions import CosineDistance, L2Distance, MaxInnerProduct
from dorm.contrib.pgvector.fields import SearchVectorField, VectorField, decode_wire
from dorm.contrib.pgvector.fulltext import rank_sql
from dorm.db.connection import get_async_connection, get_connection
from dorm.exceptions import FieldDoesNotExist, FieldError
from dorm.sql.compiler import column_converter

__all__ = ["DISTANCES", "SCORE_ATTRIBUTES", "arerank", "rerank"]

DISTANCES: dict[str, type] = {
    "cosine": CosineDistance,
    "l2": L2Distance,
    "inner_product": MaxInnerProduct,
}
MODES = ("weighted", "rrf")
#: The attributes ``rerank`` sets on each instance; a model field of such a name is refused.
SCORE_ATTRIBUTES = ("score", "vector_distance", "text_rank")


def _field(model: Any, name: Any, kind: type, option: str) -> Any:
    if not isinstance(name, str):
        raise TypeError(f"rerank: {option} must be a field name, got {name!r}")
    try:
        field = model._meta.get_field(name)
    except (FieldDoesNotExist, FieldError):
        raise FieldError(f"rerank: {model.__name__} has no field {name!r} ({option})") from None
    if not isinstance(field, kind):
        raise FieldError(
            f"rerank: {model.__name__}.{name} ({option}) is a {type(field).__name__}, "
            f"not a {kind.__name__}"
        )
    return field


def _check_options(
    candidates: Any, weight_vector: Any, mode: Any, limit: Any, rrf_k: Any, distance: Any
) -> None:
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
        raise ValueError(f"rerank: candidates must be a positive int, got {candidates!r}")
    if isinstance(weight_vector, bool) or not isinstance(weight_vector, (int, float)):
        raise TypeError(f"rerank: weight_vector must be a number, got {weight_vector!r}")
    if not 0.0 <= weight_vector <= 1.0:
        raise ValueError(f"rerank: weight_vector must be between 0 and 1, got {weight_vector!r}")
    if mode not in MODES:
        raise ValueError(f"rerank: mode must be 'weighted' or 'rrf', got {mode!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"rerank: limit must be a positive int or None, got {limit!r}")
    if isinstance(rrf_k, bool) or not isinstance(rrf_k, int) or rrf_k < 0:
        raise ValueError(f"rerank: rrf_k must be a non-negative int, got {rrf_k!r}")
    if distance not in DISTANCES:
        raise ValueError(
            f"rerank: distance must be one of {', '.join(sorted(DISTANCES))}, got {distance!r}"
        )


def _score_sql(mode: str, ph: str) -> str:
    if mode == "weighted":
        return (
            f"CAST({ph} AS DOUBLE PRECISION) * (CASE WHEN s.dmax > s.dmin "
            f"THEN (s.dmax - s.d) / (s.dmax - s.dmin) ELSE 1.0 END) "
            f"+ (1.0 - CAST({ph} AS DOUBLE PRECISION)) * (CASE WHEN s.tmax > 0 "
            f"THEN s.tr / s.tmax ELSE 0.0 END)"
        )
    return (
        f"CAST({ph} AS DOUBLE PRECISION) / ({ph} + s.vpos) "
        f"+ (1.0 - CAST({ph} AS DOUBLE PRECISION)) * (CASE WHEN s.tr > 0 "
        f"THEN 1.0 / ({ph} + s.tpos) ELSE 0.0 END)"
    )


def rerank(
    model: Any,
    *,
    vector_field: str,
    text_field_tsv: str,
    query_vector: Any,
    query_text: str,
    candidates: int = 200,
    weight_vector: float = 0.7,
    mode: str = "weighted",
    limit: int | None = None,
    queryset: Any = None,
    distance: str = "cosine",
    rrf_k: int = 60,
) -> list[Any]:
    """Return up to ``limit`` (default: all ``candidates``) instances, best score first.

    ``queryset`` (of ``model``) applies filters before the nearest-neighbour step and
    chooses the database. ``distance`` is ``"cosine"``, ``"l2"`` or ``"inner_product"``;
    pair it with the opclass of the column's index.

    :raises FieldError: a field name is unknown or of the wrong kind.
    :raises ValueError: an option is out of range; ValidationError for a query vector of
        the wrong length.
    """
    alias, sql, params, instances = _prepare(
        model,
        vector_field=vector_field,
        text_field_tsv=text_field_tsv,
        query_vector=query_vector,
        query_text=query_text,
        candidates=candidates,
        weight_vector=weight_vector,
        mode=mode,
        limit=limit,
        queryset=queryset,
        distance=distance,
        rrf_k=rrf_k,
    )
    return instances(get_connection(alias).fetchall(sql, params))


async def arerank(
    model: Any,
    *,
    vector_field: str,
    text_field_tsv: str,
    query_vector: Any,
    query_text: str,
    candidates: int = 200,
    weight_vector: float = 0.7,
    mode: str = "weighted",
    limit: int | None = None,
    queryset: Any = None,
    distance: str = "cosine",
    rrf_k: int = 60,
) -> list[Any]:
    """The async twin of ``rerank``: the statement runs on the async connection.

    Return up to ``limit`` (default: all ``candidates``) instances, best score first.

    ``queryset`` (of ``model``) applies filters before the nearest-neighbour step and
    chooses the database. ``distance`` is ``"cosine"``, ``"l2"`` or ``"inner_product"``;
    pair it with the opclass of the column's index.

    :raises FieldError: a field name is unknown or of the wrong kind.
    :raises ValueError: an option is out of range; ValidationError for a query vector of
        the wrong length.
    """
    alias, sql, params, instances = _prepare(
        model,
        vector_field=vector_field,
        text_field_tsv=text_field_tsv,
        query_vector=query_vector,
        query_text=query_text,
        candidates=candidates,
        weight_vector=weight_vector,
        mode=mode,
        limit=limit,
        queryset=queryset,
        distance=distance,
        rrf_k=rrf_k,
    )
    return instances(await get_async_connection(alias).fetchall(sql, params))


def _prepare(
    model: Any,
    *,
    vector_field: str,
    text_field_tsv: str,
    query_vector: Any,
    query_text: str,
    candidates: int = 200,
    weight_vector: float = 0.7,
    mode: str = "weighted",
    limit: int | None = None,
    queryset: Any = None,
    distance: str = "cosine",
    rrf_k: int = 60,
) -> tuple[str, str, list[Any], Callable[[Sequence[Sequence[Any]]], list[Any]]]:
    """Validate the arguments; return the alias, the statement, its parameters and the
    function that turns its rows into instances (no I/O here)."""
    from dorm.models.base import Model

    if not (isinstance(model, type) and issubclass(model, Model)):
        raise TypeError(f"rerank: model must be a dorm Model class, got {model!r}")
    vfield = _field(model, vector_field, VectorField, "vector_field")
    tfield = _field(model, text_field_tsv, SearchVectorField, "text_field_tsv")
    _check_options(candidates, weight_vector, mode, limit, rrf_k, distance)
    if not isinstance(query_text, str):
        raise TypeError(f"rerank: query_text must be a str, got {type(query_text).__name__}")
    taken = [name for name in SCORE_ATTRIBUTES if name in {f.attname for f in model._meta.fields}]
    if taken:
        raise FieldError(
            f"rerank: {model.__name__} has a field named {taken[0]!r}, which "
            f"rerank sets on each result"
        )
    if queryset is None:
        queryset = model._default_manager.all()
    elif getattr(queryset, "model", None) is not model:
        raise ValueError(f"rerank: queryset= must be a QuerySet of {model.__name__}")
    distance_expr = DISTANCES[distance](vfield.name, query_vector)
    inner_qs = (
        queryset.annotate(_rerank_d=distance_expr)
        .order_by("_rerank_d")
        .values_list("pk", "_rerank_d")[:candidates]
    )
    connection = get_connection(queryset.db)
    compiler = inner_qs.query.get_compiler(connection=connection)
    inner_sql, inner_params = compiler.as_sql()
    qn = connection.ops.quote_name
    ph = connection.ops.placeholder
    table = qn(model._meta.db_table)
    pk = qn(model._meta.pk.column)
    rank, rank_params = rank_sql(
        connection, tfield, f"t.{qn(tfield.column)}", f"t.{pk}", query_text
    )
    fields = list(model._meta.concrete_fields)
    # On PostgreSQL a vector column is read in pgvector's binary form (vector_send): a
    # bytea the driver hands over as bytes, unpacked in one call, where the text form
    # costs a parse of every element (about 10x the time for 384 dimensions).
    wire = [connection.vendor == "postgresql" and isinstance(f, VectorField) for f in fields]
    columns = ", ".join(
        f"vector_send(t.{qn(f.column)})" if binary else f"t.{qn(f.column)}"
        for f, binary in zip(fields, wire, strict=True)
    )
    score = _score_sql(mode, ph)
    sql = (
        f"WITH c(pk, d) AS ({inner_sql}), "
        f"r AS (SELECT c.pk, CAST(c.d AS DOUBLE PRECISION) AS d, {rank} AS tr "
        f"FROM c JOIN {table} t ON t.{pk} = c.pk), "
        f"s AS (SELECT r.pk, r.d, r.tr, "
        f"ROW_NUMBER() OVER (ORDER BY r.d, r.pk) AS vpos, "
        f"ROW_NUMBER() OVER (ORDER BY r.tr DESC, r.pk) AS tpos, "
        f"MIN(r.d) OVER () AS dmin, MAX(r.d) OVER () AS dmax, MAX(r.tr) OVER () AS tmax "
        f"FROM r) "
        f"SELECT {columns}, s.d, s.tr, {score} AS score "
        f"FROM s JOIN {table} t ON t.{pk} = s.pk "
        f"ORDER BY score DESC, s.pk LIMIT {ph}"
    )
    weight = float(weight_vector)
    if mode == "weighted":
        score_params: list[object] = [weight, weight]
    else:
        score_params = [weight, rrf_k, weight, rrf_k]
    params = [*inner_params, *rank_params, *score_params, limit or candidates]
    converters = [
        decode_wire if binary else column_converter(connection.ops, f)
        for f, binary in zip(fields, wire, strict=True)
    ]
    attnames = [f.attname for f in fields]
    width = len(fields)
    alias = queryset.db

    def instances(rows: Sequence[Sequence[Any]]) -> list[Any]:
        results = []
        for row in rows:
            values = [
                value if convert is None or value is None else convert(value)
                for value, convert in zip(row[:width], converters, strict=True)
            ]
            obj = model.from_db(alias, attnames, values)
            obj.vector_distance, obj.text_rank, obj.score = (float(v) for v in row[width:])
            results.append(obj)
        return results

    return alias, sql, params, instances
