"""QuerySet: lazy, chainable, cached; the Django API over one Query.

Over 800 lines: it is the public query API in one class, as in Django; the SQL work is in
``dorm.sql``, instance building in ``dorm.models.iterables``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from dorm import signals, transaction
from dorm.db.connection import connections
from dorm.db.router import router
from dorm.db.utils import MASK
from dorm.exceptions import FieldDoesNotExist, FieldError, IntegrityError
from dorm.expressions import Q
from dorm.models.filtered_relation import FilteredRelation
from dorm.models.iterables import (
    BaseIterable,
    FlatValuesListIterable,
    ModelIterable,
    NamedValuesListIterable,
    Prefetch,
    ValuesIterable,
    ValuesListIterable,
)
from dorm.models.twins import AsyncQuerySetMixin
from dorm.sql import plan_cache, writes
from dorm.sql.compiler import SQLCompiler
from dorm.sql.query import LOOKUP_SEP, Query

if TYPE_CHECKING:
    from dorm.models.base import Model
    from dorm.models.fields import Field
    from dorm.models.raw import RawQuerySet
    from dorm.sql.expression_plans import PlanCompiler

__all__ = ["Prefetch", "QuerySet"]

MAX_GET_RESULTS = 21
REPR_OUTPUT_SIZE = 20


def _one(model: type[Model], results: list[Any], kwargs: dict[str, Any]) -> Any:
    """get()'s answer from its rows: the one object, or DoesNotExist /
    MultipleObjectsReturned naming the lookups (sensitive values masked)."""
    count = len(results)
    if count == 1:
        return results[0]
    described = ", ".join(
        f"{k}={MASK!r}" if _is_sensitive_lookup(model, k) else f"{k}={v!r}"
        for k, v in kwargs.items()
    )
    if not count:
        raise model.DoesNotExist(
            f"{model.__name__} matching query does not exist"
            + (f" ({described})" if described else "")
        )
    raise model.MultipleObjectsReturned(
        f"get() returned more than one {model.__name__} -- it returned "
        f"{'more than ' if count == MAX_GET_RESULTS else ''}{count}"
        + (f" ({described})" if described else "")
    )


# -- the QuerySet ----------------------------------------------------------------------------


class QuerySet(AsyncQuerySetMixin):
    """A lazy database lookup for a set of objects of one model."""

    # The state a new QuerySet starts with, as class attributes: an instance sets only what
    # differs (a related manager makes one on every ``author.books.all()``).
    _result_cache: list[Any] | None = None
    _for_write = False
    _prefetch_related_lookups: tuple[Any, ...] = ()
    _prefetch_done = False
    _iterable_class: type[BaseIterable] = ModelIterable
    _fields: tuple[str, ...] | None = None
    # filter(**kwargs) served by a cached plan: (plan, prepared values, kwargs, get
    # mode); ``_query`` is then the unfiltered base, built into the real one on access.
    _pending: tuple[plan_cache.Plan, list[Any], dict[str, Any], bool] | None = None
    # (shape, kwargs) when this queryset is a plain filter(**kwargs) whose compiled
    # SQL the iterable may store in the plan cache.
    _plan_seed: tuple[Any, dict[str, Any]] | None = None
    _plan_db: str | None = None
    # filter(**kwargs) applied only when the query is needed: a prefetched related
    # manager's queryset is usually just iterated from its result cache.
    _deferred_filter: dict[str, Any] | None = None

    def __init__(
        self,
        model: type[Model] | None = None,
        query: Query | None = None,
        using: str | None = None,
        hints: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self._db = using
        self._hints = hints or {}
        # None stands for a fresh Query(model), built on first use: Model.objects.get()
        # served by the plan cache never needs one.
        self._query = query

    @property
    def query(self) -> Query:
        if self._query is None:
            self._query = Query(self.model)
        if self._deferred_filter is not None:
            kwargs, self._deferred_filter = self._deferred_filter, None
            self._query = self._query.chain()
            self._query.add_q(Q(**kwargs))
        if self._pending is not None:
            _plan, _values, kwargs, get_mode = self._pending
            query = self._query.chain()
            query.add_q(Q(**kwargs))
            if get_mode:
                query.clear_ordering(force=True)
                query.set_limits(high=MAX_GET_RESULTS)
            self._query = query
            self._plan_seed = self._pending = None
        return self._query

    @query.setter
    def query(self, value: Query) -> None:
        self._query = value
        self._plan_seed = self._pending = None

    @property
    def db(self) -> str:
        if self._db is not None:
            return self._db
        assert self.model is not None
        if self._for_write:
            return router.db_for_write(self.model, **self._hints)
        return router.db_for_read(self.model, **self._hints)

    def _clone(self) -> QuerySet:
        query = self._query
        if query is not None or self._pending is not None or self._deferred_filter is not None:
            query = self.query.chain()
        # else a fresh queryset: the clone starts from a fresh Query too, built on first
        # use (Model.objects.order_by(...) builds one Query, not one and a copy).
        clone = type(self)(self.model, query, self._db, self._hints)
        clone._for_write = self._for_write
        clone._prefetch_related_lookups = self._prefetch_related_lookups
        clone._iterable_class = self._iterable_class
        clone._fields = self._fields
        return clone

    _chain = _clone

    def __deepcopy__(self, memo: dict[int, Any]) -> QuerySet:
        return self._clone()

    def __getstate__(self) -> dict[str, Any]:
        self._fetch_all()
        _ = self.query  # a pending plan (not picklable) becomes a plain Query
        return dict(self.__dict__)

    def __repr__(self) -> str:
        data = list(self[: REPR_OUTPUT_SIZE + 1])
        if len(data) > REPR_OUTPUT_SIZE:
            data[-1] = "...(remaining elements truncated)..."
        return f"<{type(self).__name__} {data!r}>"

    def __len__(self) -> int:
        self._fetch_all()
        assert self._result_cache is not None
        return len(self._result_cache)

    def __iter__(self) -> Iterator[Any]:
        self._fetch_all()
        assert self._result_cache is not None
        return iter(self._result_cache)

    def __bool__(self) -> bool:
        self._fetch_all()
        return bool(self._result_cache)

    def __getitem__(self, k: int | slice) -> Any:
        if type(k) is slice and k.step is None and self._result_cache is None:
            # qs[:10], the common case, with the checks below in the same order.
            start, stop = k.start, k.stop
            if not ((start is not None and start < 0) or (stop is not None and stop < 0)):
                qs = self._chain()
                qs.query.set_limits(start, stop)
                return qs
        if not isinstance(k, (int, slice)):
            raise TypeError(f"QuerySet indices must be integers or slices, not {type(k).__name__}")
        if (isinstance(k, int) and k < 0) or (
            isinstance(k, slice)
            and ((k.start is not None and k.start < 0) or (k.stop is not None and k.stop < 0))
        ):
            raise ValueError("negative indexing is not supported")
        if self._result_cache is not None:
            return self._result_cache[k]
        if isinstance(k, slice):
            if k.step not in (None, 1):
                qs = self._chain()
                qs.query.set_limits(k.start, k.stop)
                return list(qs)[:: k.step]
            qs = self._chain()
            qs.query.set_limits(k.start, k.stop)
            return qs
        qs = self._chain()
        qs.query.set_limits(k, k + 1)
        qs._fetch_all()
        assert qs._result_cache is not None
        if not qs._result_cache:
            raise IndexError("QuerySet index out of range")
        return qs._result_cache[0]

    def __class_getitem__(cls, item: Any) -> Any:
        return cls

    def __and__(self, other: QuerySet) -> QuerySet:
        self._check_same_model(other, "&")
        combined = self._chain()
        combined.query.add_q(_where_as_q(other))
        return combined

    def __or__(self, other: QuerySet) -> QuerySet:
        self._check_same_model(other, "|")
        combined: QuerySet = self.model._default_manager.filter(  # type: ignore[union-attr]
            Q(pk__in=self.values("pk")) | Q(pk__in=other.values("pk"))
        )
        return combined

    def _check_same_model(self, other: QuerySet, op: str) -> None:
        if other.model is not self.model:
            raise TypeError(f"cannot combine querysets of different models with {op}")

    def _fetch_all(self) -> None:
        if self._result_cache is None:
            self._result_cache = self._iterable_class(self).fetch_list()
        if self._prefetch_related_lookups and not self._prefetch_done:
            from dorm.models.prefetch import prefetch_related_objects

            prefetch_related_objects(self._result_cache, *self._prefetch_related_lookups)
            self._prefetch_done = True

    def _not_sliced(self, method: str) -> None:
        pending = self._pending
        if pending is not None:
            # A plan-served filter: sliced only in get() mode; its query stays unbuilt.
            base = self._query
            if pending[3] or (base is not None and base.is_sliced):
                raise TypeError(f"cannot call {method}() once a slice has been taken")
            return
        if self.query.is_sliced:
            raise TypeError(f"cannot call {method}() once a slice has been taken")

    # -- retrieval -------------------------------------------------------------------------------

    def iterator(self, chunk_size: int | None = None) -> Iterator[Any]:
        """Stream results without caching them (a server-side cursor on PostgreSQL)."""
        if chunk_size is not None and chunk_size <= 0:
            raise ValueError("iterator(chunk_size=...) must be positive")
        if chunk_size is None:
            chunk_size = 2000
        iterable = self._iterable_class(self, chunk_size)
        if not self._prefetch_related_lookups:
            yield from iterable
            return
        from dorm.models.prefetch import prefetch_related_objects

        batch: list[Any] = []
        for obj in iterable:
            batch.append(obj)
            if len(batch) >= chunk_size:
                prefetch_related_objects(batch, *self._prefetch_related_lookups)
                yield from batch
                batch = []
        if batch:
            prefetch_related_objects(batch, *self._prefetch_related_lookups)
            yield from batch

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """``aggregate(total=Sum("price"))`` -> ``{"total": ...}``."""
        for arg in args:
            name = getattr(arg, "default_alias", None) or _default_alias(arg)
            if name in kwargs:
                raise TypeError(f"aggregate(): the alias {name!r} is given twice")
            kwargs[name] = arg
        for alias, agg in kwargs.items():
            nodes = agg.walk() if hasattr(agg, "walk") else [agg]
            if not any(getattr(n, "contains_aggregate", False) for n in nodes):
                raise TypeError(f"aggregate(): {alias}={agg!r} is not an aggregate expression")
        return self.query.get_aggregation(self.db, kwargs)

    def count(self) -> int:
        if self._result_cache is not None:
            return len(self._result_cache)
        pending = self._pending
        db = self.db
        connection = connections[db]
        # filter(**kwargs).count(): the shape's plan (stored now if need be) learns its
        # COUNT statement once; later counts run it with the new values, building no query.
        if pending is not None and not pending[3] and db == self._plan_db:
            plan, values, _kwargs, _get_mode = pending
            params = plan.params(values, connection)
        elif pending is None and self._plan_seed is not None:
            shape, kwargs = self._plan_seed
            compiler = self.query.get_compiler(db)
            compiler.setup()
            stored = plan_cache.store(shape, db, compiler, kwargs)
            if stored is None:
                return self.query.get_count(db)
            plan, params = stored.plan, stored.params
        else:
            return self.query.get_count(db)
        if plan.count_sql is None:
            return self._learn_count(plan, params, db)
        row = connection.fetchone(plan.count_sql, params, plan.sensitive)
        return int(row[0] or 0) if row else 0

    def _learn_count(self, plan: plan_cache.Plan, params: list[Any], db: str) -> int:
        from dorm.exceptions import EmptyResultSet
        from dorm.expressions import Count
        from dorm.sql.aggregates import AggregateCompiler

        query = self.query  # builds the filtered query
        if query.is_empty_query:
            return 0
        compiler = AggregateCompiler(query, db, {"__count": Count("*")})
        try:
            statement = compiler.count_statement()
        except EmptyResultSet:
            return 0
        if statement is None:
            return query.get_count(db)
        sql, own_params, sensitive = statement
        same = len(own_params) == len(params) and all(
            type(a) is type(b) and a == b for a, b in zip(own_params, params, strict=True)
        )
        if same and list(sensitive) == list(plan.sensitive):
            plan.count_sql = sql
        row = compiler.connection.fetchone(sql, own_params, sensitive)
        return int(row[0] or 0) if row else 0

    def get(self, *args: Any, **kwargs: Any) -> Any:
        """Return the one object matching; DoesNotExist / MultipleObjectsReturned otherwise."""
        shape = None if args or not kwargs else self._plan_shape(kwargs, get_mode=True)
        results: list[Any] | None = None
        if shape is not None and not self._prefetch_related_lookups:
            # The common case: rows from the cached plan, built without a clone.
            results = _planned_get(self.db, shape, kwargs)
        if results is None and shape is not None:
            planned = self._planned(shape, kwargs)
            if planned is not None:
                db, plan, values = planned
                if not self._prefetch_related_lookups:
                    results = plan.objects(values, connections[db], db)
                if results is None:
                    results = list(self._pending_clone(plan, values, kwargs, True, db))
        if results is None:
            qs = self.filter(*args, **kwargs) if (args or kwargs) else self._chain()
            if not qs.query.is_sliced:
                qs.query.clear_ordering(force=True)
                qs.query.set_limits(high=MAX_GET_RESULTS)
            if shape is not None:
                qs._plan_seed = (shape, kwargs)
            results = list(qs)
        assert self.model is not None
        return _one(self.model, results, kwargs)

    def create(self, **kwargs: Any) -> Any:
        assert self.model is not None
        obj = self.model(**kwargs)
        self._for_write = True
        obj.save(force_insert=True, using=self.db)
        return obj

    def _check_ordering_first_last_queryset_aggregation(self, method: str) -> None:
        """values(...).annotate(aggregate) groups by the values() columns: ordering by pk
        would split the groups, so first()/last() refuse it, with Django's TypeError."""
        group_by = self.query.group_by
        pk = self.model._meta.pk  # type: ignore[union-attr]
        if isinstance(group_by, tuple) and not any(
            getattr(col, "target", None) is pk for col in group_by
        ):
            raise TypeError(
                f"Cannot use QuerySet.{method}() on an unordered queryset performing "
                f"aggregation. Add an ordering with order_by()."
            )

    def first(self) -> Any:
        if not self.ordered:
            self._check_ordering_first_last_queryset_aggregation("first")
        qs = self if self.ordered else self.order_by("pk")
        for obj in qs[:1]:
            return obj
        return None

    def last(self) -> Any:
        if not self.ordered:
            self._check_ordering_first_last_queryset_aggregation("last")
        qs = self.reverse() if self.ordered else self.order_by("-pk")
        for obj in qs[:1]:
            return obj
        return None

    def _earliest(self, fields: Sequence[str], descending: bool) -> Any:
        assert self.model is not None
        if not fields:
            latest_by = self.model._meta.get_latest_by
            if not latest_by:
                raise ValueError(
                    "earliest()/latest() need field names or Meta.get_latest_by on "
                    f"{self.model.__name__}"
                )
            fields = [latest_by] if isinstance(latest_by, str) else list(latest_by)
        order = []
        for name in fields:
            if descending:
                order.append(name[1:] if name.startswith("-") else f"-{name}")
            else:
                order.append(name)
        qs = self._chain()
        qs.query.clear_ordering(force=True)
        qs.query.add_ordering(*order)
        return _first_or_raise(qs, self.model)

    def earliest(self, *fields: str) -> Any:
        return self._earliest(fields, descending=False)

    def latest(self, *fields: str) -> Any:
        return self._earliest(fields, descending=True)

    def in_bulk(
        self, id_list: Iterable[Any] | None = None, *, field_name: str = "pk"
    ) -> dict[Any, Any]:
        """Return ``{value: obj}`` for the given ids (every object when id_list is None)."""
        self._not_sliced("in_bulk")
        assert self.model is not None
        opts = self.model._meta
        if field_name != "pk":
            field = opts.get_field(field_name)
            if not field.unique:
                raise ValueError(
                    f"in_bulk()'s field_name must be a unique field, {field_name!r} is not"
                )
        else:
            field = opts.pk
        if id_list is None:
            return {getattr(obj, field.attname): obj for obj in self}
        ids = list(id_list)
        if not ids:
            return {}
        result: dict[Any, Any] = {}
        batch = 1000
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            for obj in self.filter(**{f"{field_name}__in": chunk}).order_by():
                result[getattr(obj, field.attname)] = obj
        return result

    def exists(self) -> bool:
        if self._result_cache is not None:
            return bool(self._result_cache)
        return self.query.has_results(self.db)

    def explain(self, **options: Any) -> str:
        """Return the database's plan for this query (``EXPLAIN``)."""
        return self.query.explain(self.db, **options)

    # -- writes ----------------------------------------------------------------------------------

    def get_or_create(
        self, defaults: dict[str, Any] | None = None, **kwargs: Any
    ) -> tuple[Any, bool]:
        """Return ``(obj, created)``; creates with ``defaults`` when nothing matches."""
        self._for_write = True
        try:
            return self.get(**kwargs), False
        except self.model.DoesNotExist:  # type: ignore[union-attr]
            pass
        params = self._create_params(kwargs, defaults)
        try:
            with transaction.atomic(using=self.db):
                return self.create(**params), True
        except IntegrityError:
            try:
                return self.get(**kwargs), False
            except self.model.DoesNotExist:  # type: ignore[union-attr]
                pass
            raise

    def exists_or_create(
        self, defaults: dict[str, Any] | None = None, **kwargs: Any
    ) -> tuple[bool, Any]:
        """Return ``(existed, obj)``: look up first, create only when missing (race-safe).

        An existing row costs one SELECT. On a miss, the lookup is repeated and the row
        created inside ``atomic()`` while holding a lock on the (table, lookup) key, so
        concurrent callers with the same lookup end with one row and the same object even
        when the lookup columns have no unique constraint: a transaction-scoped advisory
        lock on PostgreSQL, the write lock ``BEGIN IMMEDIATE`` takes on SQLite. Inside an
        outer ``atomic()`` the lock is held until that transaction ends. ``defaults``
        (values or callables) are used only when creating. Unlike ``get_or_create`` the
        flag says whether the row existed, and comes first.

        :raises MultipleObjectsReturned: more than one row matches ``lookup``.
        """
        from dorm.models.lookup_lock import lock_lookup

        assert self.model is not None
        self._for_write = True
        try:
            return True, self.get(**kwargs)
        except self.model.DoesNotExist:
            pass
        params = self._create_params(kwargs, defaults)
        with transaction.atomic(using=self.db):
            lock_lookup(connections[self.db], self.model._meta.db_table, kwargs)
            try:
                return True, self.get(**kwargs)
            except self.model.DoesNotExist:
                pass
            try:
                with transaction.atomic(using=self.db):
                    return False, self.create(**params)
            except IntegrityError:
                # A unique constraint was won by a writer that does not take the lock.
                try:
                    return True, self.get(**kwargs)
                except self.model.DoesNotExist:
                    pass
                raise

    def update_or_create(
        self,
        defaults: dict[str, Any] | None = None,
        create_defaults: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> tuple[Any, bool]:
        defaults = defaults or {}
        self._for_write = True
        with transaction.atomic(using=self.db):
            qs = (
                self.select_for_update()
                if connections[self.db].supports_select_for_update
                else self
            )
            try:
                obj = qs.get(**kwargs)
            except self.model.DoesNotExist:  # type: ignore[union-attr]
                params = self._create_params(
                    kwargs, create_defaults if create_defaults is not None else defaults
                )
                try:
                    with transaction.atomic(using=self.db):
                        return self.create(**params), True
                except IntegrityError:
                    obj = qs.get(**kwargs)
            for key, value in defaults.items():
                setattr(obj, key, value() if callable(value) else value)
            obj.save(using=self.db)
        return obj, False

    def _create_params(
        self, lookup: dict[str, Any], defaults: dict[str, Any] | None
    ) -> dict[str, Any]:
        assert self.model is not None
        params = {k: v for k, v in lookup.items() if "__" not in k}
        params.update({k: (v() if callable(v) else v) for k, v in (defaults or {}).items()})
        names = (
            {f.name for f in self.model._meta.fields}
            | {f.attname for f in self.model._meta.concrete_fields}
            | {"pk"}
        )
        bad = sorted(k for k in params if k not in names)
        if bad:
            raise FieldError(
                f"{self.model.__name__}: invalid field name(s) in get_or_create: "
                f"{', '.join(bad)}; fields are: {', '.join(sorted(names))}"
            )
        return params

    def bulk_create(
        self,
        objs: Iterable[Any],
        batch_size: int | None = None,
        ignore_conflicts: bool = False,
        update_conflicts: bool = False,
        update_fields: Sequence[str] | None = None,
        unique_fields: Sequence[str] | None = None,
    ) -> list[Any]:
        """INSERT many objects in multi-row statements; set their PKs where the DB returns them."""
        from dorm.models import bulk

        return bulk.bulk_create(
            self,
            list(objs),
            batch_size,
            ignore_conflicts,
            update_conflicts,
            update_fields,
            unique_fields,
        )

    def bulk_update(
        self, objs: Iterable[Any], fields: Sequence[str], batch_size: int | None = None
    ) -> int:
        from dorm.models import bulk

        return bulk.bulk_update(self, list(objs), fields, batch_size)

    def upsert(
        self,
        objs: Iterable[Any],
        unique_fields: Sequence[str] | None = None,
        update_fields: Sequence[str] | None = None,
        returning: bool = False,
        batch_size: int | None = None,
    ) -> list[Any]:
        """INSERT ... ON CONFLICT (unique_fields) DO UPDATE: sugar over bulk_create."""
        from dorm.models import bulk

        return bulk.upsert(self, list(objs), unique_fields, update_fields, returning, batch_size)

    def delete(self) -> tuple[int, dict[str, int]]:
        """Delete the matching rows (and what cascades from them); return (total, per model)."""
        self._not_sliced("delete")
        if self.query.distinct or self.query.distinct_fields:
            raise TypeError("cannot call delete() after distinct()")
        if self._fields is not None:
            raise TypeError("cannot call delete() after values() or values_list()")
        from dorm.models.deletion import Collector

        qs = self._chain()
        qs._for_write = True
        qs.query.select_for_update = False
        qs.query.select_related = False
        qs.query.clear_ordering(force=True)
        collector = Collector(qs.db, origin=self)
        collector.collect_queryset(qs)
        if not signals.queryset_deleted.has_listeners(self.model):
            deleted, per_model = collector.delete()
            self._result_cache = None
            return deleted, per_model
        # The signal is sent inside the deletion's transaction: a raising receiver undoes it.
        with transaction.atomic(using=qs.db, savepoint=False):
            deleted, per_model = collector.delete()
            self._result_cache = None
            signals.queryset_deleted.send(
                sender=self.model, queryset=qs, deleted=per_model, using=qs.db
            )
        return deleted, per_model

    def _raw_delete(self, using: str) -> int:
        sql, params, sensitive = writes.delete_sql(self.query, connections[using])
        return connections[using].execute(sql, params, sensitive)

    def update(self, **kwargs: Any) -> int:
        """UPDATE the matching rows; return how many changed. No per-object signals."""
        self._not_sliced("update")
        if not kwargs:
            raise TypeError("update() needs at least one field=value")
        assert self.model is not None
        opts = self.model._meta
        if opts.update_defaults:
            kwargs = {
                **{n: make() for n, make in opts.update_defaults.items() if n not in kwargs},
                **kwargs,
            }
        values: list[tuple[Field, Any]] = []
        targets = opts.update_targets
        for name, value in kwargs.items():
            field = targets.get(name)
            if field is None:
                field = opts.get_concrete_field(name, "update()")  # raises, naming the choices
            if field.is_relation and hasattr(value, "_meta"):
                value = value.pk
            values.append((field, value))
        self._for_write = True
        alias = self.db
        if not signals.queryset_updated.has_listeners(self.model):
            try:
                return self._update(values, alias)
            except BaseException:
                transaction._mark_rollback(alias)  # inside atomic(): the block is doomed
                raise
        # The signal is sent inside the update's transaction: a raising receiver undoes it.
        with transaction.atomic(using=alias, savepoint=False):
            rows = self._update(values, alias)
            signals.queryset_updated.send(
                sender=self.model, queryset=self, values=kwargs, rows=rows, using=alias
            )
        return rows

    def _update(self, values: Sequence[tuple[Field, Any]], alias: str | None = None) -> int:
        writes.check_write_ranges(values)
        alias = alias or self.db
        opts = self.model._meta  # type: ignore[union-attr]
        if opts.parents:
            from dorm.models import inheritance

            if any(inheritance.is_inherited(opts, f) for f, _v in values):
                self._result_cache = None
                return inheritance.update(self, values, alias)
        db = connections[alias]
        self._result_cache = None
        # filter(**kwargs).update(...): the filter shape's plan (stored now if need be)
        # keeps the UPDATE compiled for each shape of values; later updates bind new values.
        plan: plan_cache.Plan | None = None
        kwargs: dict[str, Any] = {}
        key = plan_cache.update_key(list(values))
        pending = self._pending
        if key is None:
            pass
        elif pending is not None and not pending[3] and self._plan_db == alias:
            plan, kwargs = pending[0], pending[2]
            found = plan.updates.get(key)
            if found is not None:
                params = plan_cache.update_params(plan, list(values), kwargs, db)
                if params is not None:
                    return db.execute(found[0], params, found[1])
        elif pending is None and self._plan_seed is not None:
            shape, kwargs = self._plan_seed
            compiler = self.query.get_compiler(alias)
            compiler.setup()
            stored = plan_cache.store(shape, alias, compiler, kwargs)
            if stored is not None:
                plan = stored.plan
        sql, params, sensitive = writes.update_sql(self.query, values, db)
        if plan is not None:
            mine = plan_cache.update_params(plan, list(values), kwargs, db)
            plan_cache.remember_update(plan, key, sql, params, mine, sensitive)
        return db.execute(sql, params, sensitive)

    # -- chaining --------------------------------------------------------------------------------

    def all(self) -> QuerySet:
        return self._chain()

    def none(self) -> QuerySet:
        clone = self._chain()
        clone.query.set_empty()
        return clone

    def filter(self, *args: Any, **kwargs: Any) -> QuerySet:
        """Rows matching every condition; keyword lookups, Q objects or boolean expressions."""
        return self._filter_or_exclude(False, args, kwargs)

    def exclude(self, *args: Any, **kwargs: Any) -> QuerySet:
        return self._filter_or_exclude(True, args, kwargs)

    def _filter_or_exclude(
        self, negate: bool, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> QuerySet:
        if (args or kwargs) and self._query is not None and self.query.is_sliced:
            raise TypeError("cannot filter a query once a slice has been taken")
        shape = None if negate or args or not kwargs else self._plan_shape(kwargs, get_mode=False)
        if shape is not None:
            pending = self._from_plan(shape, kwargs, get_mode=False)
            if pending is not None:
                return pending
        clone = self._chain()
        if args or kwargs:
            q = Q(*args, **kwargs)
            clone.query.add_q(~q if negate else q)
        if shape is not None:
            clone._plan_seed = (shape, kwargs)
        return clone

    def _plan_shape(self, kwargs: dict[str, Any], get_mode: bool) -> Any:
        """The plan-cache shape of ``self.filter(**kwargs)`` (sliced for get()), or None."""
        if (
            self._pending is not None
            or self._iterable_class is not ModelIterable
            or self._fields is not None
            or self._result_cache is not None
            or self._deferred_filter is not None
            or type(self)._clone is not QuerySet._clone  # a subclass copies more state
        ):
            return None
        if self._query is None:
            return plan_cache.fresh_shape_of(self.model, kwargs, get_mode)
        return plan_cache.shape_of(self._query, kwargs, get_mode)

    def _planned(
        self, shape: Any, kwargs: dict[str, Any]
    ) -> tuple[str, plan_cache.Plan, list[Any]] | None:
        """``(alias, plan, prepared values)`` when a cached plan serves ``filter(**kwargs)``
        on this queryset's alias, else None."""
        db = self.db
        plan = plan_cache.lookup(shape, db, connections[db])
        if plan is None:
            return None
        values = plan.prepare(kwargs)  # raises as the lookups would on a bad value
        if any(v is None for v in values):
            return None  # exact(None) renders IS NULL: not this plan's SQL
        return db, plan, values

    def _from_plan(self, shape: Any, kwargs: dict[str, Any], get_mode: bool) -> QuerySet | None:
        """A clone filtered by a cached plan (the WHERE is built only if someone asks)."""
        planned = self._planned(shape, kwargs)
        if planned is None:
            return None
        db, plan, values = planned
        return self._pending_clone(plan, values, kwargs, get_mode, db)

    def _pending_clone(
        self,
        plan: plan_cache.Plan,
        values: list[Any],
        kwargs: dict[str, Any],
        get_mode: bool,
        db: str,
    ) -> QuerySet:
        clone = type(self)(self.model, self._query, self._db, self._hints)
        clone._for_write = self._for_write
        clone._prefetch_related_lookups = self._prefetch_related_lookups
        clone._iterable_class = self._iterable_class
        clone._fields = self._fields
        clone._pending = (plan, values, kwargs, get_mode)
        clone._plan_db = db
        return clone

    def complex_filter(self, filter_obj: Any) -> QuerySet:
        if isinstance(filter_obj, Q):
            return self.filter(filter_obj)
        return self.filter(**filter_obj)

    def raw(
        self,
        raw_query: str,
        params: Sequence[Any] = (),
        translations: dict[str, str] | None = None,
        using: str | None = None,
    ) -> RawQuerySet:
        """Model instances from ``raw_query`` (``%s`` placeholders, ``params`` bound)."""
        from dorm.models.raw import RawQuerySet

        return RawQuerySet(raw_query, self.model, params, translations, using or self._db)  # type: ignore[arg-type]

    def union(self, *other_qs: QuerySet, all: bool = False) -> QuerySet:
        queries = [q.query for q in (self, *other_qs) if not q.query.is_empty_query]
        return self._combined("union", queries, all)

    def intersection(self, *other_qs: QuerySet) -> QuerySet:
        """Rows every queryset returns (``INTERSECT``); empty when one part is ``none()``."""
        for qs in (self, *other_qs):
            if qs.query.is_empty_query:
                return self.none()
        return self._combined("intersection", [q.query for q in (self, *other_qs)], False)

    def difference(self, *other_qs: QuerySet) -> QuerySet:
        """Rows of this queryset that none of the others return (``EXCEPT``)."""
        if self.query.is_empty_query:
            return self._chain()
        others = [q.query for q in other_qs if not q.query.is_empty_query]
        return self._combined("difference", [self.query, *others], False)

    def _combined(self, combinator: str, queries: list[Query], all: bool) -> QuerySet:
        clone = self._chain()
        if len(queries) == 1:
            # none().union(qs) is qs: the one part that can return rows.
            clone.query = queries[0].chain()
            return clone
        if not queries:
            return clone
        clone.query = Query(self.model)
        clone.query.combinator = combinator
        clone.query.combinator_all = all
        clone.query.combined_queries = tuple(queries)
        clone.query.values_select = self.query.values_select
        clone.query.default_ordering = False
        return clone

    def select_for_update(
        self, nowait: bool = False, skip_locked: bool = False, of: Sequence[str] = ()
    ) -> QuerySet:
        """Lock the selected rows until the transaction ends (PostgreSQL; SQLite locks the DB)."""
        if nowait and skip_locked:
            raise ValueError("select_for_update(): nowait and skip_locked are mutually exclusive")
        clone = self._chain()
        clone._for_write = True
        clone.query.select_for_update = True
        clone.query.select_for_update_nowait = nowait
        clone.query.select_for_update_skip_locked = skip_locked
        clone.query.select_for_update_of = tuple(of)
        return clone

    def select_related(self, *fields: str | None) -> QuerySet:
        """Fetch foreign-key objects in the same query with JOINs."""
        if self._fields is not None:
            raise TypeError("select_related() cannot follow values() / values_list()")
        clone = self._chain()
        if fields == (None,):
            clone.query.select_related = False
        elif fields:
            clone.query.add_select_related([f for f in fields if f])
        else:
            clone.query.select_related = True
        return clone

    def prefetch_related(self, *lookups: str | Prefetch | None) -> QuerySet:
        """Fetch related objects with one extra query per relation after the main query."""
        clone = self._chain()
        if lookups == (None,):
            clone._prefetch_related_lookups = ()
        else:
            clone._prefetch_related_lookups = (*clone._prefetch_related_lookups, *lookups)
        return clone

    def annotate(self, *args: Any, **kwargs: Any) -> QuerySet:
        """Add computed values to each result: ``annotate(n_books=Count("book"))``."""
        assert self.model is not None
        for arg in args:
            name = _default_alias(arg)
            if name in kwargs:
                raise ValueError(f"annotate(): the alias {name!r} is given twice")
            kwargs[name] = arg
        clone = self._chain()
        for alias, expr in kwargs.items():
            self._check_alias("annotate", alias)
            if isinstance(expr, FilteredRelation):
                clone.query.add_filtered_relation(expr, alias)
                continue
            if not hasattr(expr, "resolve_expression"):
                raise TypeError(f"annotate(): {alias}={expr!r} is not an expression")
            clone.query.add_annotation(expr, alias)
            mask = clone.query.annotation_select_mask
            if self._fields is not None and mask is not None and alias not in mask:
                mask.append(alias)
        if self._fields is not None:
            clone._fields = (*self._fields, *(a for a in kwargs if a not in self._fields))
            clone.query.values_select = clone._fields
            if clone.query.group_by is True:
                # values(...).annotate(aggregate): GROUP BY the values() columns, as Django.
                clone.query.group_by = tuple(clone.query.select)
        return clone

    def _check_alias(self, method: str, alias: str) -> None:
        """An alias may not shadow a field, ``pk`` or a reverse relation (filters would
        silently use the annotation instead)."""
        assert self.model is not None
        opts = self.model._meta
        if alias in {*opts.field_names(), *(f.attname for f in opts.concrete_fields)}:
            raise ValueError(f"{method}(): {alias!r} conflicts with a field on {opts.object_name}")

    def alias(self, **kwargs: Any) -> QuerySet:
        """Like annotate() but not selected: usable in filter() / order_by()."""
        clone = self._chain()
        for alias, expr in kwargs.items():
            self._check_alias("alias", alias)
            clone.query.add_annotation(expr, alias)
            if clone.query.annotation_select_mask is None:
                clone.query.annotation_select_mask = [
                    a for a in clone.query.annotations if a != alias
                ]
            elif alias in clone.query.annotation_select_mask:
                clone.query.annotation_select_mask.remove(alias)
        return clone

    def order_by(self, *field_names: Any) -> QuerySet:
        if self._query is not None and self.query.is_sliced:
            raise TypeError("cannot reorder a query once a slice has been taken")
        clone = self._chain()
        query = clone.query
        query.clear_ordering(force=True)
        query.add_ordering(*field_names)
        return clone

    def distinct(self, *field_names: str) -> QuerySet:
        self._not_sliced("distinct")
        clone = self._chain()
        clone.query.distinct = True
        clone.query.distinct_fields = tuple(field_names)
        return clone

    def reverse(self) -> QuerySet:
        if self.query.is_sliced:
            raise TypeError("cannot reverse a query once a slice has been taken")
        clone = self._chain()
        items = clone.query.order_by or (
            tuple(self.model._meta.ordering) if clone.query.default_ordering else ()  # type: ignore[union-attr]
        )
        if not items:
            items = ("pk",)
        flipped: list[Any] = []
        for item in items:
            if isinstance(item, str):
                flipped.append(item[1:] if item.startswith("-") else f"-{item}")
            else:
                from dorm.expressions import OrderBy

                expr = item if isinstance(item, OrderBy) else OrderBy(item)
                flipped.append(expr.reverse_ordering())
        clone.query.clear_ordering(force=True)
        clone.query.add_ordering(*flipped)
        return clone

    def defer(self, *fields: str | None) -> QuerySet:
        if self._fields is not None:
            raise TypeError("defer() cannot follow values() / values_list()")
        clone = self._chain()
        if fields == (None,):
            clone.query.clear_deferred()
        else:
            self._check_names(fields, "defer")
            clone.query.add_deferred(f for f in fields if f)
        return clone

    def only(self, *fields: str | None) -> QuerySet:
        if self._fields is not None:
            raise TypeError("only() cannot follow values() / values_list()")
        if fields == (None,):
            raise TypeError("only(None) is not allowed; use defer(None)")
        self._check_names(fields, "only")
        clone = self._chain()
        clone.query.add_immediate(f for f in fields if f is not None)
        return clone

    def _check_names(self, names: Iterable[Any], method: str) -> None:
        assert self.model is not None
        opts = self.model._meta
        for name in names:
            if name is None:
                continue
            cur = opts
            parts = name.split("__")
            for i, part in enumerate(parts):
                try:
                    field = cur.get_field(part)
                except Exception:
                    raise FieldError(
                        f"{self.model.__name__}.{method}(): unknown field {name!r}: "
                        f"{cur.object_name} has no field {part!r}; its fields are: "
                        f"{', '.join(f.name for f in cur.concrete_fields)}"
                    ) from None
                if i < len(parts) - 1:
                    related = getattr(field, "related_model", None)
                    if not getattr(field, "is_relation", False) or related is None:
                        raise FieldError(
                            f"{self.model.__name__}.{method}(): {name!r}: "
                            f"{cur.object_name}.{part} is not a relation to follow"
                        )
                    cur = related._meta

    def using(self, alias: str) -> QuerySet:
        clone = self._chain()
        clone._db = alias
        return clone

    def values(self, *fields: str, **expressions: Any) -> QuerySet:
        """Dicts instead of instances: ``values("title", "author__name")``."""
        clone = self._values(fields, expressions)
        clone._iterable_class = ValuesIterable
        return clone

    def values_list(self, *fields: str, flat: bool = False, named: bool = False) -> QuerySet:
        """Tuples (or single values with ``flat=True``, named tuples with ``named=True``)."""
        if flat and named:
            raise TypeError("values_list(): flat and named are mutually exclusive")
        if flat and len(fields) > 1:
            raise TypeError("values_list(flat=True) takes at most one field")
        clone = self._values(fields, {})
        if flat:
            clone._iterable_class = FlatValuesListIterable
        elif named:
            clone._iterable_class = NamedValuesListIterable
        else:
            clone._iterable_class = ValuesListIterable
        return clone

    def dates(self, field_name: str, kind: str, order: str = "ASC") -> QuerySet:
        """The distinct dates (``datetime.date``) of ``field_name`` truncated to ``kind``
        (year, month, week or day), NULLs left out, in ``order`` (ASC or DESC)."""
        from dorm.date_functions import Trunc, TruncDate

        if kind not in ("year", "month", "week", "day"):
            raise ValueError(f"dates(): kind must be year, month, week or day, got {kind!r}")
        field = self._date_field(field_name, "dates", ("DateField", "DateTimeField"))
        source: Any = field_name
        if field.get_internal_type() == "DateTimeField":
            source = TruncDate(field_name)
        return self._distinct_truncated(Trunc(source, kind), order, "dates")

    def datetimes(
        self, field_name: str, kind: str, order: str = "ASC", tzinfo: Any = None
    ) -> QuerySet:
        """The distinct aware datetimes of ``field_name`` truncated to ``kind`` (year ...
        second) in the zone ``tzinfo`` (UTC by default), NULLs left out, in ``order``."""
        from dorm.date_functions import TRUNC_UNITS, Trunc

        if kind not in TRUNC_UNITS:
            raise ValueError(
                f"datetimes(): kind must be one of {', '.join(TRUNC_UNITS)}, got {kind!r}"
            )
        self._date_field(field_name, "datetimes", ("DateTimeField",))
        return self._distinct_truncated(Trunc(field_name, kind, tzinfo=tzinfo), order, "datetimes")

    def _date_field(self, name: str, method: str, kinds: tuple[str, ...]) -> Field:
        model = self.model
        assert model is not None
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            field = None
        if field is None or field.get_internal_type() not in kinds:
            raise FieldError(
                f"{model.__name__}.{method}({name!r}): {name!r} is not a "
                f"{' or '.join(kinds)} of {model.__name__}"
            )
        return field  # type: ignore[no-any-return]

    def _distinct_truncated(self, expr: Any, order: str, method: str) -> QuerySet:
        if order not in ("ASC", "DESC"):
            raise ValueError(f"{method}(): order must be 'ASC' or 'DESC', got {order!r}")
        return (
            self.annotate(_truncated=expr)
            .filter(_truncated__isnull=False)
            .values_list("_truncated", flat=True)
            .distinct()
            .order_by(("-" if order == "DESC" else "") + "_truncated")
        )

    def _values(self, fields: Sequence[str], expressions: dict[str, Any]) -> QuerySet:
        clone = self._chain()
        if expressions:
            clone = clone.annotate(**expressions)
        names = [*fields, *expressions]
        query = clone.query
        if query.combinator:
            return clone._combined_values(names)
        query.select_related = False
        query.clear_deferred()
        query.set_values(names)
        clone._fields = tuple(query.values_select)
        return clone

    def _combined_values(self, names: list[str]) -> QuerySet:
        """values() on a union: as Django, each part without its own columns selects them."""
        query = self.query
        parts = []
        for part in query.combined_queries:
            if not part.values_select:
                part = part.chain()
                part.select_related = False
                part.clear_deferred()
                part.set_values(names)
            parts.append(part)
        query.combined_queries = tuple(parts)
        query.values_select = tuple(parts[0].values_select)
        self._fields = query.values_select
        return self

    def _value_names(self, compiler: SQLCompiler | PlanCompiler) -> list[str]:
        order = self._values_order(compiler)
        names = self._column_names(compiler)
        if order is None:
            return names
        return [names[i] for i in order]

    def _column_names(self, compiler: SQLCompiler | PlanCompiler) -> list[str]:
        query = compiler.query
        field_names = [n for n in query.values_select if n not in query.annotation_select]
        return [*field_names, *query.annotation_select][: compiler.col_count]

    def _values_order(self, compiler: SQLCompiler | PlanCompiler) -> list[int] | None:
        query = compiler.query
        if not query.annotations and len(query.values_select) <= compiler.col_count:
            return None  # one column per requested field, in order (add_fields)
        requested = list(query.values_select)
        columns = self._column_names(compiler)
        if not requested or requested == columns:
            return None
        try:
            return [columns.index(name) for name in requested]
        except ValueError:
            return None

    # -- expressions -----------------------------------------------------------------------------

    def resolve_expression(self, query: Query | None = None, *args: Any, **kwargs: Any) -> Any:
        if self._fields is not None and len(self._fields) > 1:
            raise TypeError("a subquery used as a value must select one column")
        return self.query.resolve_expression(query)

    @property
    def ordered(self) -> bool:
        return bool(
            self.query.order_by
            or (
                self.query.default_ordering
                and self.model._meta.ordering  # type: ignore[union-attr]
                and self.query.group_by is None
            )
        )

    def as_manager(self) -> Any:
        from dorm.models.manager import Manager

        return Manager.from_queryset(type(self))()


def _is_sensitive_lookup(model: type[Model], key: str) -> bool:
    """True when the lookup ``key`` (``email__iexact``, ``owner__api_token``) ends on a
    sensitive column, so an error message must not echo its value. Runs on errors only."""
    opts = model._meta
    for part in key.split(LOOKUP_SEP):
        try:
            field = opts.pk if part == "pk" else opts.get_field(part)
        except Exception:
            return False  # a lookup or transform name: the path has ended
        if getattr(field, "sensitive", False):
            return True
        related = getattr(field, "related_model", None)
        if related is None or isinstance(related, str):
            return False
        opts = related._meta
    return False


def _first_or_raise(qs: QuerySet, model: type[Model]) -> Any:
    for obj in qs[:1]:
        return obj
    raise model.DoesNotExist(f"{model.__name__} matching query does not exist")


def _default_alias(expr: Any) -> str:
    sources = expr.get_source_expressions() if hasattr(expr, "get_source_expressions") else []
    if len(sources) >= 1 and hasattr(sources[0], "name") and hasattr(expr, "function"):
        return f"{sources[0].name}__{expr.function.lower()}"
    raise TypeError(f"{expr!r} needs an alias: use keyword arguments")


def _where_as_q(qs: QuerySet) -> Q:
    return Q(pk__in=qs.values("pk"))


def _planned_get(db: str, shape: Any, kwargs: dict[str, Any]) -> list[Any] | None:
    """get()'s rows from a cached plan, or None when no plan serves ``kwargs`` directly."""
    connection = connections[db]
    plan = plan_cache.lookup(shape, db, connection)
    if plan is None:
        return None
    return plan.get_objects(kwargs, connection, db)


_plain_managers: dict[type, bool] = {}


def _is_plain(manager: Any) -> bool:
    """True when ``manager.get_queryset()`` is a plain ``QuerySet(model)``: its get() and
    create() can skip building that queryset."""
    kind = type(manager)
    plain = _plain_managers.get(kind)
    if plain is None:
        qs_class = manager._queryset_class or QuerySet
        plain = _plain_managers[kind] = kind.get_queryset is BaseManager.get_queryset and all(
            getattr(qs_class, name) is getattr(QuerySet, name)
            for name in ("__init__", "get", "create", "_clone", "db")
        )
    return plain


def _fresh_plan(
    manager: BaseManager, kwargs: dict[str, Any], get_mode: bool
) -> tuple[plan_cache.Plan, str, Any] | None:
    """``(plan, alias, connection)`` when every keyword value is a plain scalar and a plan
    is cached for ``Model.objects.filter(**kwargs)`` (sliced for get() in get_mode) on
    the alias the manager reads from; else None."""
    for value in kwargs.values():
        if type(value) not in _PLAIN_TYPES:
            return None
    model = manager.model
    hints = manager._hints
    db = manager._db or (router.db_for_read(model, **hints) if hints else router.db_for_read(model))
    connection = connections[db]
    plan = plan_cache.fresh_plan(model, kwargs, db, connection, get_mode)
    return None if plan is None else (plan, db, connection)


def _manager_get(self: BaseManager, *args: Any, **kwargs: Any) -> Any:
    """``Model.objects.get(**kwargs)``: a cached plan is used without a QuerySet."""
    plain = _plain_managers.get(type(self))
    if plain is None:
        plain = _is_plain(self)
    if plain and kwargs and not args:
        found = _fresh_plan(self, kwargs, True)
        if found is not None:
            plan, db, connection = found
            results = plan.get_objects(kwargs, connection, db)
            if results is not None:
                return results[0] if len(results) == 1 else _one(self.model, results, kwargs)
    return self.get_queryset().get(*args, **kwargs)


_PLAIN_TYPES = plan_cache.PLAIN_TYPES


# Manager class -> the QuerySet class its filter() may build directly, or None.
_plain_filters: dict[type, type[QuerySet] | None] = {}


def _manager_filter(self: BaseManager, *args: Any, **kwargs: Any) -> QuerySet:
    """``Model.objects.filter(**kwargs)``: when a cached plan serves it, the queryset
    ``get_queryset().filter(**kwargs)`` would return (of the manager's QuerySet class,
    its WHERE bound to the plan, built only if someone asks), made without the fresh
    queryset in between."""
    kind = type(self)
    if kind in _plain_filters:
        qs_class = _plain_filters[kind]
    else:
        qs_class = self._queryset_class or QuerySet
        if not _is_plain(self) or any(
            getattr(qs_class, name) is not getattr(QuerySet, name)
            for name in ("filter", "_filter_or_exclude", "_plan_shape", "_pending_clone")
        ):
            qs_class = None
        _plain_filters[kind] = qs_class
    if qs_class is not None and kwargs and not args:
        found = _fresh_plan(self, kwargs, False)
        if found is not None:
            plan, db, _connection = found
            values = plan.prepare(kwargs)  # raises as the lookups would on a bad value
            if not any(v is None for v in values):  # exact(None) is IS NULL: not this plan
                qs = qs_class(self.model, None, self._db, self._hints)
                qs._pending = (plan, values, kwargs, False)
                qs._plan_db = db
                return qs
    return self.get_queryset().filter(*args, **kwargs)


def _manager_create(self: BaseManager, **kwargs: Any) -> Any:
    """``Model.objects.create(**kwargs)``."""
    if not _is_plain(self):
        return self.get_queryset().create(**kwargs)
    model = self.model
    obj = model(**kwargs)
    obj.save(force_insert=True, using=self._db or router.db_for_write(model, **self._hints))
    return obj


_manager_get.__doc__ = QuerySet.get.__doc__
_manager_filter.__doc__ = QuerySet.filter.__doc__
from dorm.models.manager import BaseManager, _install_proxies  # noqa: E402

_install_proxies(get=_manager_get, create=_manager_create, filter=_manager_filter)
