"""A short tour of dorm on SQLite: run by ``make demo``; each feature adds a few lines."""

from __future__ import annotations

import datetime
import logging
import shutil
import sys
import tempfile
import time
from typing import Any

import dorm
from dorm import plugins, signals, transaction
from dorm.cli import main
from dorm.db.connection import reset_connections
from dorm.migrations.schema import SchemaEditor
from dorm.plugins import hookimpl


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


class Author(dorm.Model):
    name = dorm.CharField(max_length=80)

    class Meta:
        app_label = "tour"

    def __str__(self) -> str:
        return self.name


class Note(dorm.Model):
    title = dorm.CharField(max_length=120)
    author = dorm.ForeignKey(Author, on_delete=dorm.CASCADE, related_name="notes")
    stars = dorm.IntegerField(default=0)

    class Meta:
        app_label = "tour"
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Badge(dorm.Model):
    slug = dorm.SlugField(unique=True)
    stars = dorm.IntegerField(default=0)

    class Meta:
        app_label = "tour"


class AuditPlugin:
    """A plugin registered at runtime: it sees saves and queries like an installed one."""

    def __init__(self) -> None:
        self.saved: list[str] = []

    @hookimpl
    def dorm_post_save(self, sender: type, instance: Any, created: bool) -> None:
        self.saved.append(f"{'created' if created else 'updated'} {instance!r}")


class _OneLine(logging.Formatter):
    """A logged error as one line with its exception: the tour shows that it was logged;
    a real application's log keeps the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        error = record.exc_info[1] if record.exc_info else None
        plain = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        line = super().format(plain)
        return f"{line} ({type(error).__name__}: {error})" if error is not None else line


class BrokenTracer:
    """An observer hook that fails: dorm logs it and the query goes on."""

    @hookimpl
    def dorm_post_query(self, sql: str, duration: float) -> None:
        raise RuntimeError("this tracer is broken on purpose")


def extra_fields_step() -> None:
    """Two fields of the dorm-fields plugin: MoneyField and ColorField (skipped without it)."""
    step("dorm-fields: MoneyField and ColorField, validated on assignment")
    try:
        from dorm.contrib.extra_fields import ColorField, Money, MoneyField
    except ImportError:
        print("   dorm-fields is not installed (pip install dorm-fields)")
        return
    from dorm.exceptions import ValidationError

    class Mug(dorm.Model):
        price = MoneyField(currency="EUR")
        color = ColorField(default="#000000")

        class Meta:
            app_label = "tour"

    with SchemaEditor() as editor:
        editor.create_model(Mug)
    mug = Mug(price=Money("9.90", "EUR"))
    mug.color = "#1e90ff"
    mug.save()
    loaded = Mug.objects.get(pk=mug.pk)
    print(f"   saved and loaded: price={loaded.price}, color={loaded.color}")
    print(f"   price + 0.10 EUR = {loaded.price + Money('0.10', 'EUR')}")
    for field, bad in (("color", "red"), ("price", Money("5", "USD"))):
        try:
            setattr(loaded, field, bad)
        except ValidationError as exc:
            print(f"   {field} = {bad!r}: {exc}")


def tasks_step() -> None:
    """dorm-tasks: enqueue in transactions (one rolled back), then a worker drains the queue."""
    step("dorm-tasks: enqueue inside a transaction, roll one back, run a worker")
    try:
        from dorm.contrib.outbox import OutboxEvent
        from dorm.contrib.tasks import TaskQueue, task
    except ImportError:
        print("   dorm-tasks is not installed (pip install dorm-tasks)")
        return

    class BackgroundTask(OutboxEvent):
        class Meta:
            app_label = "tour"
            db_table = "background_task"

    with SchemaEditor() as editor:
        editor.create_model(BackgroundTask)
    queue = TaskQueue(model=BackgroundTask, channel="tasks")

    @task(queue, name="send-welcome")
    def send_welcome(author_id: int) -> None:
        print(f"   worker: welcome mail for {Author.objects.get(pk=author_id)}")

    with transaction.atomic():
        grace = Author.objects.create(name="Grace Hopper")
        send_welcome.delay(grace.pk)
    try:
        with transaction.atomic():
            ghost = Author.objects.create(name="Ghost")
            send_welcome.delay(ghost.pk)
            raise RuntimeError("signup failed")
    except RuntimeError:
        print("   rolled back: the Ghost author and its task")
    print(f"   queued: {BackgroundTask.objects.filter(status='queued').count()} task(s)")
    ran = queue.run(once=True)
    statuses = list(BackgroundTask.objects.values_list("name", "status"))
    print(f"   worker ran {ran} task(s); queue now: {statuses}")


def temporal_step() -> None:
    """dorm-temporal: a bulk update captured by the database, read back with as_of."""
    step("dorm-temporal: a bulk update captured by triggers, read back with as_of()")
    try:
        from dorm.contrib.temporal import as_of, temporal
    except ImportError:
        print("   dorm-temporal is not installed (pip install dorm-temporal)")
        return

    @temporal
    class Price(dorm.Model):
        sku = dorm.CharField(max_length=10)
        cents = dorm.IntegerField()

        class Meta:
            app_label = "tour"

    with SchemaEditor() as editor:
        editor.create_model(Price)
        editor.create_model(Price._temporal_model)
    Price.objects.bulk_create([Price(sku="mug", cents=900), Price(sku="cap", cents=1500)])
    before = datetime.datetime.now(datetime.UTC)
    time.sleep(0.01)
    with temporal.context(user="tour", reason="10% off"):
        changed = Price.objects.update(cents=dorm.F("cents") * 9 / 10)  # one UPDATE, no signals
    print(f"   queryset.update() changed {changed} rows")
    print(f"   now:        {sorted(Price.objects.values_list('sku', 'cents'))}")
    print(f"   as_of(before): {sorted(as_of(Price, before).values_list('sku', 'cents'))}")
    versions = Price.history.filter(sku="mug").values_list("operation", "cents", "user")
    print(f"   history of the mug: {list(versions)}")


def observability_step() -> None:
    """dorm-observability: an N+1 loop and its fix, metrics, a row cache, a slow transaction."""
    step("dorm-observability: N+1 advice, Prometheus metrics, a row cache, slow transactions")
    try:
        from prometheus_client import CollectorRegistry

        from dorm.contrib import prometheus, slow_tx
        from dorm.contrib.nplusone import detect
        from dorm.contrib.row_cache import RowCache
    except ImportError:
        print("   dorm-observability is not installed (pip install dorm-observability)")
        return
    registry = CollectorRegistry()
    prometheus.install(registry)
    with detect(log=False) as scope:
        titles = [f"{note.title} by {note.author.name}" for note in Note.objects.all()]
    finding = scope.findings[0]
    print(f"   N+1: {finding.count} author reads for {len(titles)} notes -> .{finding.fix.code}")
    with detect(log=False) as fixed:
        titles = [f"{n.title} by {n.author.name}" for n in finding.fix.apply(Note.objects.all())]
    print(f"   with the fix: {len(fixed.findings)} finding(s), {titles}")
    labels = {"alias": "default", "operation": "select"}
    count = registry.get_sample_value("dorm_queries_total", labels)
    print(f"   dorm_queries_total{labels} = {count}")
    prometheus.uninstall()

    authors = RowCache(Author, maxsize=100)
    ada = Author.objects.get(name="Ada")
    authors.get(ada.pk)
    authors.get(ada.pk)
    Author.objects.filter(pk=ada.pk).update(name="Ada L.")
    print(
        f"   RowCache after an update: {authors.get(ada.pk).name!r}, "
        f"hits={authors.hits} misses={authors.misses}"
    )
    Author.objects.filter(pk=ada.pk).update(name="Ada")
    authors.close()

    class ShowSlow(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            where: Any = getattr(record, "location", None)
            duration: Any = getattr(record, "duration_ms", 0.0)
            print(
                f"   log {record.levelname} {record.name}: {duration:.0f} ms, "
                f"opened at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}"
            )

    slow_tx.install(threshold_ms=50)
    handler = ShowSlow()
    logging.getLogger("dorm.contrib.slow_tx").addHandler(handler)
    with transaction.atomic():
        Note.objects.filter(stars__gte=5).count()
        time.sleep(0.06)
    logging.getLogger("dorm.contrib.slow_tx").removeHandler(handler)
    slow_tx.uninstall()


def serializers_step() -> None:
    """dorm-serializers: a QuerySet streamed as MessagePack and read back; its schemas."""
    step("dorm-serializers: stream a table as MessagePack, read it back, export its schemas")
    try:
        from dorm.contrib.serializers import (
            avro_schema_for,
            iter_msgpack,
            openapi_schema_for,
            stream_msgpack,
        )
    except ImportError:
        print("   dorm-serializers is not installed (pip install dorm-serializers)")
        return
    import decimal

    class Invoice(dorm.Model):
        number = dorm.CharField(max_length=12)
        total = dorm.DecimalField(max_digits=10, decimal_places=2)
        issued = dorm.DateTimeField()

        class Meta:
            app_label = "tour"

    with SchemaEditor() as editor:
        editor.create_model(Invoice)
    issued = datetime.datetime(2026, 1, 31, 12, 0, tzinfo=datetime.UTC)
    Invoice.objects.bulk_create(
        [
            Invoice(
                number=f"F-{i:04d}",
                total=decimal.Decimal(i) * 10 + decimal.Decimal("0.99"),
                issued=issued,
            )
            for i in range(1, 2001)
        ]
    )
    chunks = list(stream_msgpack(Invoice.objects.all(), chunk_rows=500))
    data = b"".join(chunks)
    print(f"   {Invoice.objects.count()} rows -> {len(chunks)} chunks, {len(data):,} bytes")
    last = list(iter_msgpack(data, Invoice))[-1]
    print(f"   read back: {last.number} {last.total!r} {last.issued.isoformat()}")
    price = openapi_schema_for(Invoice)["properties"]["total"]
    print(f"   OpenAPI total: {price['type']} matching {price['pattern']}")
    print(f"   Avro total: {avro_schema_for(Invoice)['fields'][2]['type']}")


def pgvector_step() -> None:
    """dorm-pgvector: nearest neighbours by cosine distance, then a hybrid rerank."""
    step("dorm-pgvector: k-NN with CosineDistance, and rerank() fusing vector and text")
    try:
        from dorm.contrib.pgvector import CosineDistance, SearchVectorField, VectorField
        from dorm.contrib.pgvector.reranker import rerank
    except ImportError:
        print("   dorm-pgvector is not installed (pip install dorm-pgvector)")
        return

    class Snippet(dorm.Model):
        text = dorm.CharField(max_length=60)
        embedding = VectorField(dimensions=3)
        search_vector = SearchVectorField(source_fields=["text"])

        class Meta:
            app_label = "tour"

    with SchemaEditor() as editor:
        editor.create_model(Snippet)
    Snippet.objects.bulk_create(
        [
            Snippet(text="vector search in postgres", embedding=[0.9, 0.1, 0.0]),
            Snippet(text="search engines rank text", embedding=[0.5, 0.5, 0.2]),
            Snippet(text="a recipe for pasta", embedding=[0.0, 0.2, 0.9]),
        ]
    )
    q = [1.0, 0.3, 0.0]
    nearest = Snippet.objects.annotate(d=CosineDistance("embedding", q)).order_by("d")[:2]
    print(f"   nearest: {[(s.text, round(s.d, 3)) for s in nearest]}")
    hits = rerank(
        Snippet,
        vector_field="embedding",
        text_field_tsv="search_vector",
        query_vector=q,
        query_text="search rank",
        weight_vector=0.5,
        limit=2,
    )
    print(f"   rerank:  {[(s.text, round(s.score, 3)) for s in hits]}")


def security_step() -> None:
    """dorm-security: mask a table in place, rotate a token, guard and rate-limit a call."""
    step("dorm-security: anonymize in batches, rotate a token, permissions, rate limits")
    try:
        from dorm.contrib.anonymizer import anonymize_model
        from dorm.contrib.auth.tokens import ShortLivedToken, TokenStore
        from dorm.contrib.permissions import (
            GroupMembership,
            PermissionDenied,
            PermissionGrant,
            grant,
            requires,
        )
        from dorm.contrib.rate_limit import RateLimited, TokenBucket, rate_limited
    except ImportError:
        print("   dorm-security is not installed (pip install dorm-security)")
        return

    class Customer(dorm.Model):
        email = dorm.EmailField(unique=True, pii=True)
        notes = dorm.TextField(default="")

        class Meta:
            app_label = "tour"

    with SchemaEditor() as editor:
        for model in (Customer, ShortLivedToken, PermissionGrant, GroupMembership):
            editor.create_model(model)
    Customer.objects.bulk_create(
        [Customer(email=f"c{i}@shop.example", notes="calls at night") for i in range(5)]
    )
    changed = anonymize_model(
        Customer, {"email": "random_email", "notes": "redact"}, batch_size=2, seed="tour"
    )
    first = Customer.objects.order_by("pk").first()
    assert first is not None
    print(f"   anonymized {changed} rows in batches of 2: {first.email}, {first.notes!r}")
    store = TokenStore()
    new, old = store.rotate(store.issue("customer:1"))
    both = store.verify(old) == store.verify(new) == "customer:1"
    print(f"   rotated a token; old and new both valid in the grace window: {both}")

    @requires("customer.export")
    def export(user: Any) -> str:
        return "export.csv"

    try:
        export(first)
    except PermissionDenied as exc:
        print(f"   refused: {exc}")
    grant(first, "customer.export")
    print(f"   after grant(): {export(first)}")
    bucket = TokenBucket(rate_per_second=1, burst=3)

    @rate_limited(bucket, key=lambda user: user.pk)
    def download(user: Any) -> str:
        return "ok"

    try:
        for _ in range(5):
            download(first)
    except RateLimited as exc:
        print(f"   4th download in a row: {exc}")


def async_step() -> None:
    """dorm-async: a loop's authors in one query; background tasks with an ExceptionGroup."""
    step("dorm-async: a data loader turns the N+1 loop into one query; bounded background tasks")
    try:
        from dorm.contrib.background import BackgroundTasks
        from dorm.contrib.dataloader import DataLoader
        from dorm.contrib.sync_dataloader import SyncDataLoader
    except ImportError:
        print("   dorm-async is not installed (pip install dorm-async)")
        return
    import asyncio

    from dorm.test import CaptureQueriesContext

    notes = list(Note.objects.order_by("pk"))
    loader: Any = SyncDataLoader(lambda ids: Author.objects.in_bulk(ids))
    with CaptureQueriesContext() as queries:
        for note in notes:
            loader.load(note.author_id)
        loader.flush()
        names = [loader.load(note.author_id).name for note in notes]
    print(f"   SyncDataLoader: the authors of {len(notes)} notes {names} in {len(queries)} query")

    def mail(address: str) -> str:
        if "@" not in address:
            raise ValueError(f"not an address: {address!r}")
        return address

    async def main() -> None:
        aloader: Any = DataLoader(lambda ids: Author.objects.ain_bulk(ids))
        with CaptureQueriesContext() as aqueries:
            await asyncio.gather(*(aloader.load(note.author_id) for note in notes))
        print(f"   DataLoader: {len(notes)} loads in one tick, {len(aqueries)} query")
        bg = BackgroundTasks(concurrency=2)
        for address in ("ada@example.com", "nobody", "grace@example.com"):
            bg.add(mail, address)  # a sync function: runs in a thread
        try:
            await bg.run()
        except* ValueError as group:
            print(f"   BackgroundTasks: {group.message}: {[str(e) for e in group.exceptions]}")

    asyncio.run(main())


def saga_step() -> None:
    """dorm-saga: a saga compensated in reverse, and an inbox that drops a redelivery."""
    step("dorm-saga: a failed saga compensated in reverse; a redelivered message skipped")
    try:
        from dorm.contrib.inbox import InboxRecord, idempotent
        from dorm.contrib.saga import Saga, Step
    except ImportError:
        print("   dorm-saga is not installed (pip install dorm-saga)")
        return

    class Order(dorm.Model):
        state = dorm.CharField(max_length=20)

        class Meta:
            app_label = "tour"

    class Inbox(InboxRecord):
        class Meta:
            app_label = "tour"

    with SchemaEditor() as editor:
        editor.create_model(Order)
        editor.create_model(Inbox)

    def reserve(ctx: dict[str, Any]) -> None:
        ctx["order"] = Order.objects.create(state="reserved").pk

    def release(ctx: dict[str, Any]) -> None:
        Order.objects.filter(pk=ctx["order"]).update(state="released")

    def charge(ctx: dict[str, Any]) -> None:
        raise RuntimeError("card declined")

    run = Saga(steps=[Step("reserve", reserve, release), Step("charge", charge)]).run()
    print(
        f"   saga ok={run.ok}, failed at {run.failure[0] if run.failure else None!r}, "
        f"compensated {run.compensated}"
    )
    print(f"   orders: {list(Order.objects.values_list('state', flat=True))}")

    @idempotent(Inbox, handler_name="tour")
    def on_paid(message_id: str) -> str:
        return f"handled {message_id}"

    print(f"   inbox: {on_paid('msg-1')!r}, redelivered: {on_paid('msg-1')!r}")


def routing_step() -> None:
    """dorm-routing: a primary and a streaming standby behind ActivePassiveRouter."""
    step("dorm-routing: writes to the primary, reads to a streaming standby (two servers)")
    try:
        from dorm.contrib.active_passive import ActivePassiveRouter
    except ImportError:
        print("   dorm-routing is not installed (pip install dorm-routing)")
        return
    from dorm.test.postgres import PostgresUnavailableError, start_cluster

    try:
        primary = start_cluster()
    except PostgresUnavailableError as exc:
        print(f"   needs the PostgreSQL server binaries: {exc}")
        return
    standby = None
    router = ActivePassiveRouter(aliases=["node_a", "node_b"], sticky_seconds=1.0)
    try:
        standby = primary.start_replica()
        dorm.configure(
            DATABASES={
                "default": primary.settings("postgres"),
                "node_a": primary.settings("postgres"),
                "node_b": standby.settings("postgres"),
            },
            DATABASE_ROUTERS=[router],
        )
        print(f"   roles: {[(s.alias, s.role) for s in router.status()]}")
        print(f"   writes -> {router.primary}, reads -> {router.db_for_read(Note)}")
    finally:
        router.close()
        reset_connections()
        if standby is not None:
            standby.stop()
        primary.stop()


def run() -> None:
    step(f"dorm {dorm.__version__}: the plugins this environment has")
    main(["plugins"])

    workdir = tempfile.mkdtemp(prefix="dorm-tour-")
    step(f"configure SQLite in {workdir}/tour.db and create the tables")
    dorm.configure(DATABASES={"default": f"sqlite:///{workdir}/tour.db"})
    with SchemaEditor() as editor:
        editor.create_model(Author)
        editor.create_model(Note)
        editor.create_model(Badge)

    step("a receiver on post_save, and a plugin implementing dorm_post_save")
    audit = AuditPlugin()
    plugins.register(audit, name="audit")

    def on_save(sender: type, instance: Any, created: bool, **kwargs: Any) -> None:
        print(f"   receiver: {'created' if created else 'updated'} {instance!r}")

    signals.post_save.connect(on_save, sender=Note)
    ada = Author.objects.create(name="Ada")
    first = Note.objects.create(title="hello", author=ada, stars=3)
    Note.objects.create(title="engines", author=ada, stars=5)
    first.stars = 4
    first.save(update_fields=["stars"])
    print(f"   plugin saw: {audit.saved}")

    step("queries: filters across relations, annotations, values")
    print(f"   {list(Note.objects.filter(author__name='Ada', stars__gte=4))}")
    counted = Author.objects.annotate(n=dorm.Count("notes"), best=dorm.Max("notes__stars"))
    print(f"   {list(counted.values('name', 'n', 'best'))}")
    with transaction.atomic():
        Note.objects.filter(stars__lt=5).update(stars=dorm.F("stars") + 1)
    print(f"   {list(Note.objects.values_list('title', 'stars'))}")

    step("upsert: one INSERT ... ON CONFLICT per batch; exists_or_create: look up, then create")
    Badge.objects.upsert([Badge(slug="ada", stars=5), Badge(slug="bob", stars=1)], ["slug"])
    Badge.objects.upsert([Badge(slug="ada", stars=9), Badge(slug="cy", stars=2)], ["slug"])
    print(f"   upserted: {list(Badge.objects.order_by('slug').values_list('slug', 'stars'))}")
    for name in ("Ada", "Grace"):
        existed, author = Author.objects.exists_or_create(name=name)
        print(f"   exists_or_create(name={name!r}): existed={existed}, pk={author.pk}")

    extra_fields_step()
    tasks_step()
    temporal_step()
    saga_step()
    async_step()
    security_step()
    observability_step()
    serializers_step()
    pgvector_step()

    step("a broken observer hook is logged, never raised (see docs/hooks.md)")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_OneLine("   log %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    plugins.register(BrokenTracer(), name="broken-tracer")
    print(f"   count still works: {Note.objects.count()} notes", flush=True)
    plugins.unregister("broken-tracer")
    logging.getLogger().removeHandler(handler)

    step("the CLI: unknown commands are one line and exit code 2")
    code = main(["migrat"])
    sys.stderr.flush()
    print(f"   exit code {code}")
    plugins.unregister("audit")
    reset_connections()
    shutil.rmtree(workdir, ignore_errors=True)
    routing_step()


if __name__ == "__main__":
    run()
