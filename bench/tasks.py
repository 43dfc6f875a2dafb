"""dorm-tasks against procrastinate and pgqueuer on a throwaway PostgreSQL cluster.

``python bench/tasks.py`` (the peers come from ``bench/requirements.txt``; a peer that is
not installed is skipped). Each measurement gets a fresh database. Scenarios:

- ``enqueue_single``: N jobs, one per transaction, from one process. ``bare_autocommit``
  is one autocommit statement per job, INSERT and ``pg_notify`` together (an autocommit
  enqueue's best case), the baseline of ``dorm_autocommit`` (``fn.delay()`` outside
  ``atomic()``). ``bare`` is the same
  INSERT plus NOTIFY through psycopg in one explicit transaction per job (the hand-written
  outbox); dorm is ``with atomic(): fn.delay(i)`` and, for reference, ``fn.delay(i)`` in
  autocommit.
- ``enqueue_batch``: 5,000 jobs in one call (``delay_many`` / ``batch_defer`` / list enqueue).
- ``throughput_wN``: a queue pre-filled with 5,000 no-op jobs drained by N worker
  processes, timed from a common start signal to the last worker's exit. Job ``i`` carries
  the id ``i``; each task appends it to a per-process list that the worker sends back with
  its end time, and every cell is checked to have run each id 0..4999 exactly once.
- ``latency_*``: one idle worker; 200 jobs committed 20 ms apart; the time from the
  enqueuer's COMMIT returning to the job starting in the worker (p50 / p99).

Results go to ``bench/results/tasks.md`` and ``tasks.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "tests"))

JOBS = 5000
SINGLE = 2000
LATENCY_JOBS = 200
LATENCY_GAP = 0.020
WORKERS = (1, 2, 4)
ROUNDS = 7

# Ids of the no-op jobs this process has run (the throughput side effect, see throughput()).
SEEN: list[int] = []

# -- dorm ---------------------------------------------------------------------------------------

_dorm: dict[str, Any] = {}


def dorm_app() -> dict[str, Any]:
    """The dorm model, queue and no-op task (built once per process)."""
    if _dorm:
        return _dorm
    import dorm
    from dorm.contrib.outbox import OutboxEvent
    from dorm.contrib.tasks import TaskQueue, task

    class BenchJob(OutboxEvent):
        class Meta:
            app_label = "bench_tasks"
            db_table = "bench_job"

    queue = TaskQueue(model=BenchJob, channel="bench")
    starts: dict[int, float] = {}

    @task(queue, name="noop")
    def noop(i: int) -> None:
        SEEN.append(i)

    @task(queue, name="stamp")
    def stamp(i: int) -> None:
        starts[i] = time.time()

    _dorm.update(dorm=dorm, model=BenchJob, queue=queue, noop=noop, stamp=stamp, starts=starts)
    return _dorm


def dorm_setup(settings: dict[str, Any]) -> dict[str, Any]:
    app = dorm_app()
    app["dorm"].configure(DATABASES={"default": {**settings, "MAX_POOL_SIZE": 4}})
    return app


def dorm_install(settings: dict[str, Any]) -> None:
    from dorm.migrations.schema import SchemaEditor

    app = dorm_setup(settings)
    with SchemaEditor() as editor:
        editor.create_model(app["model"])


# -- procrastinate ------------------------------------------------------------------------------


def procrastinate_app(dsn: str) -> tuple[Any, Any, Any, dict[int, float]]:
    import procrastinate

    # procrastinate warns that the bench defines its App in __main__; that is intended here.
    logging.getLogger("procrastinate").setLevel(logging.ERROR)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))
    starts: dict[int, float] = {}

    @app.task(name="noop")
    async def noop(i: int) -> None:
        SEEN.append(i)

    @app.task(name="stamp")
    async def stamp(i: int) -> None:
        starts[i] = time.time()

    return app, noop, stamp, starts


def procrastinate_install(dsn: str) -> None:
    app, *_ = procrastinate_app(dsn)
    with app.open():
        app.schema_manager.apply_schema()


# -- pgqueuer -----------------------------------------------------------------------------------


async def pgqueuer_install(dsn: str) -> None:
    import asyncpg
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.queries import Queries

    conn = await asyncpg.connect(dsn)
    await Queries(AsyncpgDriver(conn)).install()
    await conn.close()


# -- enqueue ------------------------------------------------------------------------------------


def enqueue_single(system: str, dsn: str, settings: dict[str, Any], n: int) -> float:
    """A peer's jobs per second, one job per transaction."""
    import psycopg

    if system == "procrastinate":
        procrastinate_install(dsn)
        papp, pnoop, _stamp, _starts = procrastinate_app(dsn)
        with papp.open():
            pnoop.defer(i=-1)
            start = time.perf_counter()
            for i in range(n):
                pnoop.defer(i=i)
            return n / (time.perf_counter() - start)
    if system == "pgqueuer":
        asyncio.run(pgqueuer_install(dsn))
        from pgqueuer.db import SyncPsycopgDriver
        from pgqueuer.queries import SyncQueries

        with psycopg.connect(dsn, autocommit=True) as conn:
            queries = SyncQueries(SyncPsycopgDriver(conn))
            queries.enqueue("noop", b"-1")
            start = time.perf_counter()
            for i in range(n):
                queries.enqueue("noop", str(i).encode())
            return n / (time.perf_counter() - start)
    raise ValueError(system)


def enqueue_single_dorm(dsn: str, settings: dict[str, Any], n: int) -> dict[str, float]:
    """bare / dorm / dorm_autocommit, interleaved in rounds on one database (median rate).

    Interleaving cancels the drift of a shared, busy machine out of the ratio.
    """
    import psycopg

    dorm_install(settings)
    app = _dorm
    noop, atomic = app["noop"], app["dorm"].transaction.atomic
    noop.delay(-1)  # warm the pool and the statement cache
    sql = (
        "INSERT INTO bench_job (name, payload, status, priority, eta, attempts, "
        "created_at) VALUES (%s, %s::jsonb, 'queued', 0, now(), 0, now())"
    )
    with psycopg.connect(dsn, autocommit=True) as conn:

        def bare(count: int) -> None:
            for i in range(count):
                with conn.transaction():
                    conn.execute(sql, ("noop", json.dumps({"args": [i], "kwargs": {}})))
                    conn.execute("NOTIFY bench")

        one_statement = (
            f"WITH ins AS ({sql} RETURNING id) SELECT id, pg_notify('bench', '') FROM ins"
        )

        def bare_autocommit(count: int) -> None:
            # What an autocommit enqueue can do at best: one statement, one round trip.
            for i in range(count):
                conn.execute(
                    one_statement, ("noop", json.dumps({"args": [i], "kwargs": {}}))
                ).fetchall()

        def dorm_atomic(count: int) -> None:
            for i in range(count):
                with atomic():
                    noop.delay(i)

        def dorm_autocommit(count: int) -> None:
            for i in range(count):
                noop.delay(i)

        runs: dict[str, Callable[[int], None]] = {
            "bare": bare,
            "dorm": dorm_atomic,
            "dorm_autocommit": dorm_autocommit,
            "bare_autocommit": bare_autocommit,
        }
        rates: dict[str, list[float]] = {name: [] for name in runs}
        chunk = max(1, n // ROUNDS)
        for _round in range(ROUNDS):
            for name, run in runs.items():
                start = time.perf_counter()
                run(chunk)
                rates[name].append(chunk / (time.perf_counter() - start))
    result = {name: statistics.median(values) for name, values in rates.items()}
    result["dorm / bare"] = statistics.median(
        d / b for d, b in zip(rates["dorm"], rates["bare"], strict=True)
    )
    result["dorm_autocommit / bare_autocommit"] = statistics.median(
        d / b for d, b in zip(rates["dorm_autocommit"], rates["bare_autocommit"], strict=True)
    )
    return result


def prefill(system: str, dsn: str, settings: dict[str, Any], n: int) -> float:
    """Enqueue ``n`` no-op jobs in one call; return jobs per second."""
    if system == "dorm":
        dorm_install(settings)
        noop = _dorm["noop"]
        start = time.perf_counter()
        noop.delay_many([(i,) for i in range(n)])
        return n / (time.perf_counter() - start)
    if system == "procrastinate":
        procrastinate_install(dsn)
        papp, pnoop, _stamp, _starts = procrastinate_app(dsn)
        with papp.open():
            start = time.perf_counter()
            pnoop.batch_defer(*[{"i": i} for i in range(n)])
            return n / (time.perf_counter() - start)
    if system == "pgqueuer":
        import psycopg

        asyncio.run(pgqueuer_install(dsn))
        from pgqueuer.db import SyncPsycopgDriver
        from pgqueuer.queries import SyncQueries

        with psycopg.connect(dsn, autocommit=True) as conn:
            queries = SyncQueries(SyncPsycopgDriver(conn))
            start = time.perf_counter()
            queries.enqueue(["noop"] * n, [str(i).encode() for i in range(n)], [0] * n)
            return n / (time.perf_counter() - start)
    raise ValueError(system)


# -- workers (child processes) ------------------------------------------------------------------


def worker_main(
    system: str,
    dsn: str,
    settings: dict[str, Any],
    ready: Any,
    go: Any,
    results: Any,
    mode: str,
) -> None:
    """Drain the queue (``mode="drain"``) or stamp LATENCY_JOBS jobs (``listen`` / ``poll``).

    A draining worker puts ``(end time, ids of the jobs it ran)`` on ``results``.
    """
    if system == "dorm":
        app = dorm_setup(settings)
        queue = app["queue"]
        from dorm.db.connection import get_connection

        get_connection().fetchone("SELECT 1")
        if mode == "poll":
            queue.poll_interval = 0.05
        ready.put(os.getpid())
        go.wait()
        if mode == "drain":
            queue.run(once=True, handle_signals=False)
            results.put((time.time(), SEEN))
        else:
            queue.run(max_tasks=LATENCY_JOBS, listen=mode == "listen", handle_signals=False)
            results.put(dict(app["starts"]))
        return
    if system == "procrastinate":
        asyncio.run(_procrastinate_worker(dsn, ready, go, results, mode))
        return
    if system == "pgqueuer":
        asyncio.run(_pgqueuer_worker(dsn, ready, go, results, mode))
        return
    raise ValueError(system)


async def _procrastinate_worker(dsn: str, ready: Any, go: Any, results: Any, mode: str) -> None:
    papp, _noop, _stamp, starts = procrastinate_app(dsn)
    async with papp.open_async():
        ready.put(os.getpid())
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        if mode == "drain":
            await papp.run_worker_async(wait=False, concurrency=1, install_signal_handlers=False)
            results.put((time.time(), SEEN))
            return
        worker = asyncio.ensure_future(
            papp.run_worker_async(concurrency=1, install_signal_handlers=False)
        )
        while len(starts) < LATENCY_JOBS:
            await asyncio.sleep(0.05)
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        results.put(dict(starts))


async def _pgqueuer_worker(dsn: str, ready: Any, go: Any, results: Any, mode: str) -> None:
    import asyncpg
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.qm import QueueManager
    from pgqueuer.queries import Queries
    from pgqueuer.types import QueueExecutionMode

    conn = await asyncpg.connect(dsn)
    qm = QueueManager(Queries(AsyncpgDriver(conn)))
    starts: dict[int, float] = {}

    @qm.entrypoint("noop")
    async def noop(job: Any) -> None:
        SEEN.append(int(job.payload))

    @qm.entrypoint("stamp")
    async def stamp(job: Any) -> None:
        starts[int(job.payload)] = time.time()
        if len(starts) >= LATENCY_JOBS:
            qm.shutdown.set()

    ready.put(os.getpid())
    await asyncio.get_running_loop().run_in_executor(None, go.wait)
    if mode == "drain":
        await qm.run(mode=QueueExecutionMode.drain)
        results.put((time.time(), SEEN))
    else:
        await qm.run()
        results.put(dict(starts))
    await conn.close()


def _start_workers(
    system: str, dsn: str, settings: dict[str, Any], count: int, mode: str
) -> tuple[list[Any], Any, Any]:
    ctx = mp.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=worker_main, args=(system, dsn, settings, ready, go, results, mode))
        for _ in range(count)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=60)
    time.sleep(0.3)  # let every worker reach its wait
    return procs, go, results


def check_exactly_once(system: str, workers: int, seen: list[list[int]], n: int) -> int:
    """Assert the workers' ids are exactly {0..n-1}, each once; return how many were checked."""
    counts: dict[int, int] = {}
    for ids in seen:
        for i in ids:
            counts[i] = counts.get(i, 0) + 1
    missing = [i for i in range(n) if i not in counts]
    duplicated = sorted(i for i, c in counts.items() if c > 1 and 0 <= i < n)
    extra = sorted(i for i in counts if not 0 <= i < n)
    if missing or duplicated or extra:
        raise AssertionError(
            f"exactly-once failed: {system} with {workers} worker(s) ran "
            f"{sum(counts.values())} jobs for {n} ids; "
            f"{len(missing)} missing (first: {missing[:10]}), "
            f"{len(duplicated)} duplicated (first: {[(i, counts[i]) for i in duplicated[:10]]}), "
            f"{len(extra)} unexpected (first: {extra[:10]})"
        )
    return len(counts)


def throughput(
    system: str,
    dsn: str,
    settings: dict[str, Any],
    workers: int,
    checks: dict[str, int] | None = None,
) -> float:
    """Jobs per second; raises AssertionError unless every job ran exactly once.

    ``checks[system]`` gets the number of ids verified to have run once.
    """
    prefill(system, dsn, settings, JOBS)
    procs, go, results = _start_workers(system, dsn, settings, workers, "drain")
    started = time.time()
    go.set()
    reports = [results.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join(30)
    rate = JOBS / (max(end for end, _ids in reports) - started)
    once = check_exactly_once(system, workers, [ids for _end, ids in reports], JOBS)
    if checks is not None:
        checks[system] = once
    return rate


def latency(system: str, dsn: str, settings: dict[str, Any], mode: str) -> tuple[float, float]:
    """p50 and p99 pickup latency in milliseconds."""
    import psycopg

    if system == "dorm":
        dorm_install(settings)
    elif system == "procrastinate":
        procrastinate_install(dsn)
    else:
        asyncio.run(pgqueuer_install(dsn))
    procs, go, results = _start_workers(system, dsn, settings, 1, mode)
    go.set()
    time.sleep(0.5)  # the worker is idle
    committed: dict[int, float] = {}
    if system == "dorm":
        app = _dorm
        stamp, atomic = app["stamp"], app["dorm"].transaction.atomic
        for i in range(LATENCY_JOBS):
            with atomic():
                stamp.delay(i)
            committed[i] = time.time()
            time.sleep(LATENCY_GAP)
    elif system == "procrastinate":
        papp, _noop, pstamp, _starts = procrastinate_app(dsn)
        with papp.open():
            for i in range(LATENCY_JOBS):
                pstamp.defer(i=i)
                committed[i] = time.time()
                time.sleep(LATENCY_GAP)
    else:
        from pgqueuer.db import SyncPsycopgDriver
        from pgqueuer.queries import SyncQueries

        with psycopg.connect(dsn, autocommit=True) as conn:
            queries = SyncQueries(SyncPsycopgDriver(conn))
            for i in range(LATENCY_JOBS):
                queries.enqueue("stamp", str(i).encode())
                committed[i] = time.time()
                time.sleep(LATENCY_GAP)
    starts = results.get(timeout=120)
    for proc in procs:
        proc.join(30)
    delays = sorted(max(0.0, starts[i] - committed[i]) * 1000 for i in committed)
    return delays[len(delays) // 2], delays[min(len(delays) - 1, int(len(delays) * 0.99))]


# -- driver -------------------------------------------------------------------------------------


def installed(system: str) -> bool:
    if system in ("dorm", "dorm_autocommit", "bare"):
        return True
    try:
        __import__(system)
    except ImportError:
        print(f"{system} is not installed (pip install -r bench/requirements.txt): skipped")
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", default=str(BENCH / "results"))
    parser.add_argument("--single", type=int, default=SINGLE)
    args = parser.parse_args(argv)
    from conftest import PgCluster, find_pg_bindir

    bindir = find_pg_bindir()
    if bindir is None:
        print("PostgreSQL server binaries not found: nothing to measure", file=sys.stderr)
        return 1
    # Durable settings (fsync, synchronous_commit, full_page_writes on): a queue of
    # record is measured as it runs in production.
    cluster = PgCluster(bindir, durable=True)
    cluster.start()
    counter = [0]

    def fresh() -> tuple[str, dict[str, Any]]:
        counter[0] += 1
        name = f"bench_tasks_{counter[0]}"
        cluster.create_database(name)
        from dorm.db.connection import reset_connections

        reset_connections()
        return cluster.dsn(name), cluster.settings(name)

    def measure(label: str, fn: Callable[[str, dict[str, Any]], Any]) -> Any:
        dsn, settings = fresh()
        value = fn(dsn, settings)
        print(f"  {label}: {value}", flush=True)
        return value

    peers = [p for p in ("procrastinate", "pgqueuer") if installed(p)]
    report: dict[str, Any] = {"python": platform.python_version(), "results": {}}
    res = report["results"]
    try:
        print("enqueue, one job per transaction (jobs/s)", flush=True)
        single = measure("bare, dorm", lambda d, s: enqueue_single_dorm(d, s, args.single))
        ratio = single.pop("dorm / bare")
        report["autocommit_ratio"] = single.pop("dorm_autocommit / bare_autocommit")
        for peer in peers:
            single[peer] = measure(peer, lambda d, s, x=peer: enqueue_single(x, d, s, args.single))
        res["enqueue_single"] = single
        report["single_ratio"] = ratio
        print(f"enqueue, {JOBS} jobs in one call (jobs/s)", flush=True)
        res["enqueue_batch"] = {
            system: measure(system, lambda d, s, x=system: prefill(x, d, s, JOBS))
            for system in ("dorm", *peers)
        }
        exactly_once: dict[str, dict[str, int]] = {}
        report["exactly_once"] = exactly_once
        for workers in WORKERS:
            print(f"end to end, {JOBS} no-op jobs, {workers} worker(s) (jobs/s)", flush=True)
            checks = exactly_once[f"throughput_w{workers}"] = {}
            res[f"throughput_w{workers}"] = {
                system: measure(
                    system,
                    lambda d, s, x=system, w=workers, c=checks: throughput(x, d, s, w, c),
                )
                for system in ("dorm", *peers)
            }
        print(f"pickup latency, {LATENCY_JOBS} jobs {LATENCY_GAP * 1000:.0f} ms apart (ms)")
        lat: dict[str, Any] = {}
        lat["dorm (LISTEN/NOTIFY)"] = measure(
            "dorm listen", lambda d, s: latency("dorm", d, s, "listen")
        )
        lat["dorm (polling 50 ms)"] = measure(
            "dorm poll", lambda d, s: latency("dorm", d, s, "poll")
        )
        for peer in peers:
            lat[peer] = measure(peer, lambda d, s, x=peer: latency(x, d, s, "listen"))
        res["latency"] = lat
    finally:
        cluster.stop()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tasks.json").write_text(json.dumps(report, indent=2))
    table = render(report)
    (out / "tasks.md").write_text(table)
    print(table)
    return 0


def render(report: dict[str, Any]) -> str:
    res = report["results"]
    lines = [
        "# dorm-tasks against procrastinate and pgqueuer (PostgreSQL, one host)",
        "",
        f"Python {report['python']}. Jobs per second (higher is better) unless noted.",
        "",
        "| scenario | " + " | ".join(["system", "value"]) + " |",
        "|---|---|---|",
    ]
    for scenario, values in res.items():
        if scenario == "latency":
            continue
        for system, value in values.items():
            lines.append(f"| {scenario} | {system} | {value:,.0f} |")
    for system, (p50, p99) in res.get("latency", {}).items():
        lines.append(f"| pickup latency p50 / p99 (ms) | {system} | {p50:.2f} / {p99:.2f} |")
    checks = report.get("exactly_once", {})
    cells = [once for systems in checks.values() for once in systems.values()]
    if cells:
        every = all(once == JOBS for once in cells)
        lines += [
            "",
            f"exactly-once: {min(cells)}/{JOBS} ids once"
            + (", every cell" if every else f" (minimum over {len(cells)} cells)")
            + f" ({len(cells)} throughput cells: each id 0..{JOBS - 1} ran exactly once)",
        ]
    if "single_ratio" in report:
        lines += [
            "",
            f"dorm single enqueue (atomic() per job) / bare INSERT+NOTIFY transaction: "
            f"{report['single_ratio']:.2f} (median of {ROUNDS} interleaved rounds)",
        ]
    if "autocommit_ratio" in report:
        lines += [
            "",
            "dorm fn.delay() in autocommit / bare autocommit INSERT + pg_notify in one "
            f"statement: {report['autocommit_ratio']:.2f} (median of {ROUNDS} interleaved "
            "rounds; target 0.8)",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
