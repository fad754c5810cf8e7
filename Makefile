# Vigil: the README's two set-up commands are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The web UI's front-end packages (package-lock.json), copied where the app serves them.
ASSETS := src/vigil/core/web/static/vendor/.installed

.PHONY: run test lint typecheck check-deploy format bench install clean build compose-up compose-down

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(ASSETS): package-lock.json $(STAMP)
	npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/python -m vigil.core.web.assets node_modules
	touch $(ASSETS)

install: $(STAMP) $(ASSETS)

## Everything in one process on the embedded SQLite database (./data/vigil.db).
run: $(STAMP) $(ASSETS)
	$(BIN)/vigil up

## The whole test suite: unit, integration (SQLite + PostgreSQL) and end-to-end.
test: $(STAMP) $(ASSETS)
	$(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP) typecheck check-deploy
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

## Static checks of the deploy files (no container engine needed): Dockerfile, compose,
## Prometheus config (promtool comes with Debian's prometheus package).
check-deploy: $(STAMP)
	$(BIN)/hadolint deploy/Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec deploy/compose.yaml
	promtool check config deploy/prometheus/prometheus.yml

## Container image and the compose stack (need Docker; not run on the CI machine).
build:
	docker build -f deploy/Dockerfile -t vigil:latest .

compose-up:
	docker compose -f deploy/compose.yaml up -d --build

compose-down:
	docker compose -f deploy/compose.yaml down

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

## Benchmarks (figures in docs/BENCHMARKS.md).
bench: $(STAMP)
	$(BIN)/python -m pytest bench -p no:cacheprovider --benchmark-only
	bash bench/rates_api.sh
	bash bench/cached_rates.sh
	$(BIN)/python bench/web_browser.py

clean:
	rm -rf $(VENV) node_modules src/vigil/core/web/static/vendor .mypy_cache .ruff_cache .pytest_cache
