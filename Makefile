# Vigil: the README's two set-up commands are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The web UI's front-end packages (package-lock.json), copied where the app serves them.
ASSETS := src/vigil/core/web/static/vendor/.installed

.PHONY: run test lint typecheck check-deploy format bench install clean build compose-up compose-down k3d-up k3d-down

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(ASSETS): package-lock.json $(STAMP)
	npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/python -m vigil.core.web.assets node_modules
	touch $(ASSETS)

# checkov in a venv of its own (it pins older versions of packages the app uses), and the
# validators of the chart's custom resources (npm; deploy/tools/crds/package-lock.json).
CHECKOV := $(VENV)/checkov/bin/checkov
CRDS    := deploy/tools/crds
CRDS_OK := $(CRDS)/node_modules/.installed
RENDERED := build/deploy

$(CHECKOV): deploy/tools/requirements-checkov.txt
	$(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install --quiet -r deploy/tools/requirements-checkov.txt
	touch $(CHECKOV)

$(CRDS_OK): $(CRDS)/package-lock.json
	npm ci --prefix $(CRDS) --no-audit --no-fund --loglevel=error
	touch $(CRDS_OK)

install: $(STAMP) $(ASSETS) $(CHECKOV) $(CRDS_OK)

## Everything in one process on the embedded SQLite database (./data/vigil.db).
run: $(STAMP) $(ASSETS)
	$(BIN)/vigil up

## The whole test suite: unit, integration (SQLite + PostgreSQL) and end-to-end.
test: $(STAMP) $(ASSETS)
	$(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP) typecheck check-deploy
	$(BIN)/ruff check src tests bench deploy/tools
	$(BIN)/ruff format --check src tests bench deploy/tools

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy deploy/tools/chart.py deploy/tools/bump_image.py

## Static checks of the deploy files, offline (no cluster, no container engine, no helm binary;
## docs/deploy.md): Dockerfile, compose, Prometheus config and alert rules (promtool comes with
## Debian's prometheus package), the Helm chart linted and rendered for each values case
## (Helm's Go SDK), the kustomize overlays built, every object validated (kubernetes-validate
## for Kubernetes' own kinds at the oldest and newest supported version, kubernetes-models for
## the CRDs, ArgoCD Applications included), checkov over the manifests and the Dockerfile.
check-deploy: $(STAMP) $(CHECKOV) $(CRDS_OK)
	$(BIN)/hadolint deploy/Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec deploy/compose.yaml
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/ci.yml
	promtool check config deploy/prometheus/prometheus.yml
	promtool check rules deploy/helm/vigil/files/alerts.yml
	promtool test rules deploy/prometheus/tests/*.test.yml
	amtool check-config deploy/alertmanager/alertmanager.yml
	shellcheck deploy/k3d/*.sh
	rm -rf $(RENDERED)
	$(BIN)/python deploy/tools/chart.py check $(RENDERED)
	for overlay in dev prod; do \
	  $(BIN)/kubectl kustomize deploy/kustomize/overlays/$$overlay > $(RENDERED)/kustomize-$$overlay.yaml || exit 1; \
	done
	$(BIN)/kubernetes-validate --strict --quiet --no-warn -k 1.25.0 $(RENDERED)/*.yaml
	$(BIN)/kubernetes-validate --strict --quiet --no-warn -k 1.37.0 $(RENDERED)/*.yaml
	node $(CRDS)/validate.mjs $(RENDERED)/*.yaml deploy/argocd/*.yaml deploy/argocd/monitoring/*.yaml
	$(CHECKOV) --config-file deploy/checkov.yaml --framework kubernetes -d $(RENDERED)
	$(CHECKOV) --config-file deploy/checkov.yaml --framework dockerfile -f deploy/Dockerfile

## Container image and the compose stack (need Docker; not run on the CI machine).
build:
	docker build -f deploy/Dockerfile -t vigil:latest .

compose-up:
	docker compose -f deploy/compose.yaml up -d --build

compose-down:
	docker compose -f deploy/compose.yaml down

## A local k3d cluster running Vigil (needs Docker, k3d, kubectl, and helm or not; docs/deploy.md).
k3d-up:
	deploy/k3d/up.sh

k3d-down:
	deploy/k3d/down.sh

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
	rm -rf $(CRDS)/node_modules $(RENDERED)
