# pystatus. `make test` and `make demo` set up everything they need:
# system packages, the virtualenv, and a private PostgreSQL cluster.

VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell md5sum pyproject.toml | cut -c1-12)

.PHONY: help system-packages demo-packages browser-packages venv test test-unit lint format migrate db db-stop demo bench bench-quick bench-sustained bench-upgrade schema clean

help:
	@echo "make demo      start a local PostgreSQL, migrate, and show services heartbeating"
	@echo "make test      run the test suite (starts and stops its own PostgreSQL)"
	@echo "make test-unit only the pure code's tests, without a database (seconds)"
	@echo "make lint      ruff, ruff format --check, mypy, pgspot over sql/"
	@echo "make migrate   apply migrations to \$$DATABASE_URL (MIGRATE_ARGS=... for options)"
	@echo "make db        start a local PostgreSQL with pg_partman and pg_cron (make db-stop)"
	@echo "make bench     the benchmarks at full size (about 25 min); rewrites docs/benchmarks.md"
	@echo "make bench-sustained  10,000 services heartbeating for 30 min with pg_cron's jobs running;"
	@echo "               rewrites docs/benchmarks-sustained.md"
	@echo "make bench-upgrade  each release with 18 M history rows upgraded while services heartbeat"
	@echo "make schema    regenerate sql/installed.sql (pg_dump of a fresh install)"

system-packages:
	@sh scripts/install-system-packages

demo-packages:
	@sh scripts/install-system-packages --demo

browser-packages:
	@sh scripts/install-system-packages --browser

$(STAMP):
	rm -f $(VENV)/.installed-*
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,dashboard]'
	touch $@

venv: system-packages $(STAMP)

test: venv browser-packages
	$(BIN)/pytest

test-unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

lint: venv
	$(BIN)/ruff check pystatus tests bench scripts
	$(BIN)/ruff format --check pystatus tests bench scripts
	$(BIN)/mypy
	$(BIN)/python scripts/lint_sql.py

format: venv
	$(BIN)/ruff check --fix pystatus tests bench scripts
	$(BIN)/ruff format pystatus tests bench scripts

migrate: venv
	@test -n "$$DATABASE_URL" || { echo "set DATABASE_URL, e.g. postgresql://user@host/db"; exit 2; }
	$(BIN)/pystatus migrate $(MIGRATE_ARGS)

db: venv
	$(BIN)/pystatus db start

db-stop: venv
	$(BIN)/pystatus db stop

demo: demo-packages $(STAMP)
	$(BIN)/pystatus demo $(DEMO_ARGS)

bench: venv
	$(BIN)/python -m bench.run --output

bench-quick: venv
	$(BIN)/python -m bench.run --quick

bench-sustained: venv
	$(BIN)/python -m bench.sustained

bench-upgrade: venv
	$(BIN)/python -m bench.upgrade

schema: venv
	$(BIN)/python -m tests.schema_snapshot > sql/installed.sql

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
