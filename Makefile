# Vigil: the README's two set-up commands are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint format bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Everything in one process on the embedded SQLite database (./data/vigil.db).
run: $(STAMP)
	$(BIN)/vigil up

## The whole test suite: unit, integration (SQLite + PostgreSQL) and end-to-end.
test: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

## Benchmarks (figures in docs/BENCHMARKS.md).
bench: $(STAMP)
	$(BIN)/python -m pytest bench -p no:cacheprovider --benchmark-only
	bash bench/rates_api.sh
	bash bench/cached_rates.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
