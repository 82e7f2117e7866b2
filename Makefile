# Two commands on a fresh machine with Python 3.11+ and make: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install run migrate superuser test test-postgres test-ha test-cluster soak fuzz bench bench-gapless bench-ir lint fmt check clean

$(STAMP): requirements.txt requirements-dev.txt client/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(STAMP)

run: install
	$(PY) -m incrementific.serve

# Both with make run's DATA_DIR, database and generated keys (incrementific/local.py).
migrate: install
	$(PY) -m incrementific.local migrate

# Asks for the name and password, or takes DJANGO_SUPERUSER_USERNAME, _PASSWORD (and _EMAIL).
superuser: install
	$(PY) -m incrementific.local createsuperuser $(if $(and $(DJANGO_SUPERUSER_USERNAME),$(DJANGO_SUPERUSER_PASSWORD)),--noinput)

test: install
	$(VENV)/bin/pytest

# The same suite against the machine's PostgreSQL (or DATABASE_URL), where row locks are real.
test-postgres: install
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/incrementific} $(VENV)/bin/pytest

# Sentinel failovers with a real primary, replica and three Sentinels (tests/test_ha.py), on the
# machine's PostgreSQL when it answers; not part of `make test`.
test-ha: install
	$(VENV)/bin/pytest -m ha tests/test_ha.py

# The suite again with a real six-node Redis Cluster as the store (tests/harness/cluster.py), then its
# failovers, a reshard under load and three app servers (tests/test_cluster.py); not part of `make test`.
test-cluster: install
	TEST_REDIS_CLUSTER=1 $(VENV)/bin/pytest
	$(VENV)/bin/pytest -m cluster tests/test_cluster.py

# Minutes of load on gunicorn while Redis is killed, flushed and replaced; not part of `make test`.
# SOAK_SENTINEL=1: a primary, a replica and three Sentinels, and failovers as the faults;
# SOAK_CLUSTER=1: a six-node Redis Cluster, primaries killed and slots moved.
soak: install
	$(PY) -m tests.harness.soak

# The service against its bare-WSGI anchor under wrk, with 100,000 counters too; writes BENCHMARKS.md.
bench: install
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq wrk; } \
		|| { echo "make bench needs wrk (Debian: apt-get install wrk)"; exit 1; }
	$(PY) -m tests.harness.bench --big

# One gapless counter against a fast one, side by side, 24 clients, on PostgreSQL (DATABASE_URL's
# server, default the machine's); writes its table in BENCHMARKS.md.
bench-gapless: install
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq wrk; } \
		|| { echo "make bench-gapless needs wrk (Debian: apt-get install wrk)"; exit 1; }
	$(PY) -m tests.harness.bench_gapless

# Instructions per `next` in-process under valgrind's callgrind: a figure the machine's noise cannot move.
bench-ir: install
	@command -v valgrind >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq valgrind; } \
		|| { echo "make bench-ir needs valgrind (Debian: apt-get install valgrind)"; exit 1; }
	$(PY) -m tests.harness.bench_ir

# schemathesis against a live server from the OpenAPI schema, every check, many examples per endpoint;
# FUZZ_SEED=N fuzzes other data than the suite's fixed seed.
fuzz: install
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-300} $(VENV)/bin/pytest tests/test_openapi.py tests/test_schemathesis.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

check: lint test

clean:
	rm -rf $(VENV) .pytest_cache
