# dorm workspace. `make demo` and `make test` bootstrap .venv themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.dorm-installed
PYTEST_ARGS ?=

.PHONY: demo test lint wheels bench bench-tasks bench-temporal bench-saga bench-async bench-security bench-observability bench-serializers bench-routing bench-pgvector bench-startup clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) requirements-dev.txt tools/dev_install.py $(wildcard packages/*/pyproject.toml)
	$(PY) tools/dev_install.py
	touch $@

demo: $(STAMP)
	$(PY) demo/tour.py

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	MYPYPATH=$$(ls -d packages/*/src | paste -sd:) $(VENV)/bin/mypy $$(ls -d packages/*/src/dorm)

wheels: $(STAMP)
	$(PY) -m pip install --quiet "hatch>=1.12"
	rm -rf dist
	for p in packages/*/; do (cd $$p && ../../$(VENV)/bin/hatch build -t wheel -t sdist ../../dist) || exit 1; done
	ls -l dist

BENCH_SCALE ?= small

BENCH_STAMP := $(VENV)/.bench-installed

# The peer ORMs (Django, SQLAlchemy, peewee) are bench-only: not in requirements-dev.txt.
$(BENCH_STAMP): $(STAMP) bench/requirements.txt
	$(PY) -m pip install --quiet -r bench/requirements.txt
	touch $@

bench: $(BENCH_STAMP)
	$(PY) bench/run.py --scale $(BENCH_SCALE)

# dorm-tasks against procrastinate and pgqueuer (PostgreSQL only).
bench-tasks: $(BENCH_STAMP)
	$(PY) bench/tasks.py

# dorm-temporal: a tracked table against the same untracked table, SQLite and PostgreSQL.
bench-temporal: $(STAMP)
	$(PY) bench/temporal.py

# dorm-saga: two-phase commit, @idempotent and named_lock against the plain way.
bench-saga: $(STAMP)
	$(PY) bench/saga.py

# dorm-async: the loader pattern against the N+1 loop and select_related, SQLite and PostgreSQL.
bench-async: $(STAMP)
	$(PY) bench/dataloaders.py

# dorm-security: anonymize_model at 10k and 100k rows against one hand-written UPDATE.
bench-security: $(STAMP)
	$(PY) bench/security.py

# dorm-observability: overhead of metrics and tracing on core scenarios, SQLite and PostgreSQL.
bench-observability: $(STAMP)
	$(PY) bench/observability.py

# dorm-serializers: stream_msgpack against json.dumps over values() and msgpack over raw tuples.
bench-serializers: $(STAMP)
	$(PY) bench/serializers.py

# dorm-routing: reads through ActivePassiveRouter against a fixed-alias router (primary + standby).
bench-routing: $(STAMP)
	$(PY) bench/routing.py

# dorm-pgvector: k-NN (exact and HNSW) and rerank against the raw driver; recall@10.
bench-pgvector: $(STAMP)
	$(PY) bench/pgvector.py

# import dorm, loading every installed plugin, and dorm --help.
bench-startup: $(STAMP)
	$(PY) bench/startup.py

clean:
	rm -rf $(VENV) dist .pytest_cache .mypy_cache .ruff_cache
