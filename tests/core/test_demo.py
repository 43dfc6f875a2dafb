"""``make demo`` runs demo/tour.py: it must keep working as the ORM grows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_tour_runs_and_shows_real_results() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "demo" / "tour.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[{'name': 'Ada', 'n': 2, 'best': 5}]" in out
    assert "[('engines', 5), ('hello', 5)]" in out
    assert "count still works: 2 notes" in out
    assert "(RuntimeError: this tracer is broken on purpose)" in out
    assert "Traceback" not in out + result.stderr  # nothing failed: no traceback
    assert "exit code 2" in out
    assert "upserted: [('ada', 9), ('bob', 1), ('cy', 2)]" in out
    assert "exists_or_create(name='Ada'): existed=True, pk=1" in out
    assert "exists_or_create(name='Grace'): existed=False, pk=2" in out
    assert "saved and loaded: price=9.90 EUR, color=#1E90FF" in out
    assert "color = 'red': Mug.color: 'red' is not a colour" in out
    assert "price = Money('5', 'USD'): currency mismatch" in out
    assert "worker: welcome mail for Grace Hopper" in out
    assert "worker ran 1 task(s); queue now: [('send-welcome', 'done')]" in out
    assert "now:        [('cap', 1350), ('mug', 810)]" in out
    assert "as_of(before): [('cap', 1500), ('mug', 900)]" in out
    assert "history of the mug: [('insert', 900, None), ('update', 810, 'tour')]" in out
    assert "saga ok=False, failed at 'charge', compensated ['reserve']" in out
    assert "orders: ['released']" in out
    assert "inbox: 'handled msg-1', redelivered: None" in out
    assert "SyncDataLoader: the authors of 2 notes ['Ada', 'Ada'] in 1 query" in out
    assert "DataLoader: 2 loads in one tick, 1 query" in out
    assert "anonymized 5 rows in batches of 2: anon." in out and "'[REDACTED]'" in out
    assert "old and new both valid in the grace window: True" in out
    assert "refused: user Customer object (1) (pk=1) lacks permission 'customer.export'" in out
    assert "after grant(): export.csv" in out
    assert "4th download in a row: rate limit of bucket 'default' exceeded" in out
    assert 'N+1: 2 author reads for 2 notes -> .select_related("author")' in out
    assert "with the fix: 0 finding(s), ['engines by Ada', 'hello by Ada']" in out
    assert "RowCache after an update: 'Ada L.', hits=1 misses=2" in out
    assert "log WARNING dorm.contrib.slow_tx:" in out
    assert "2000 rows -> 4 chunks" in out
    assert "read back: F-2000 Decimal('20000.99') 2026-01-31T12:00:00+00:00" in out
    assert "Avro total: {'type': 'bytes', 'logicalType': 'decimal'" in out
    from dorm.test.postgres import find_pg_bindir

    if find_pg_bindir() is not None:
        assert "roles: [('node_a', 'primary'), ('node_b', 'replica')]" in out
        assert "writes -> node_a, reads -> node_b" in out
    else:
        assert "needs the PostgreSQL server binaries" in out
    assert "nearest: [('vector search in postgres', 0.016), ('search engines rank text'" in out
    assert "rerank:  [('search engines rank text', 0.926)" in out
    assert "1 of 3 tasks failed: [\"not an address: 'nobody'\"]" in out
