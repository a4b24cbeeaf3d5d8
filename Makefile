# Two commands on a fresh machine: `make run` and `make test` (SPEC §2).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint db db-stop migrate worker bench clean

$(STAMP): pyproject.toml
	@scripts/bootstrap.sh "$(PYTHON)" "$(VENV)"
	@touch $(STAMP)

install: $(STAMP)

## make run: local PostgreSQL (unless DATABASE_URL/POSTGRES_* is set), migrations, API + worker
run: install
	@scripts/run.sh

## make test: the same bootstrap, lint, then the whole suite against a real PostgreSQL
test: install
	@scripts/test.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

db: install
	@scripts/localdb.sh start >/dev/null

db-stop:
	@scripts/localdb.sh stop

migrate: install
	@scripts/with_db.sh $(BIN)/alembic upgrade head

bench: install
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && echo "bench: installing wrk" >&2 \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null; } \
	  || { echo "bench: bench/api_throughput.py needs wrk (apt-get install wrk)" >&2; exit 1; }
	@scripts/with_db.sh $(BIN)/python -m bench.run_all

clean:
	-@scripts/localdb.sh stop
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
