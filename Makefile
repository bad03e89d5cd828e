# relance: `make demo` and `make test` set up everything they need on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# No telemetry from any tool, ever (tests, CI, demo).
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export MLFLOW_DISABLE_TELEMETRY := true
export GX_ANALYTICS_ENABLED := false

.DEFAULT_GOAL := help
.PHONY: help setup system-tools demo test test-fast test-integration test-e2e lint format ui bench lock clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	# --compile-bytecode: the .pyc files are written once here, not by the first command (or test) that imports
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -r requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP) ## Create .venv and install the pinned dependencies (requirements.lock)

# The tests look at what a person sees: the HTML report in headless Chromium, the PDF letters as PNG pages. Both
# tools are Debian packages; installed once, as root, when missing (elsewhere: install them by hand).
SYSTEM_TOOLS := chromium pdftoppm
system-tools:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing (Debian packages chromium, poppler-utils)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils >/dev/null; \
	  else echo "missing$$missing: install chromium and poppler-utils (the screenshot and PDF tests need them)"; fi; \
	fi

demo: $(STAMP) ## Generate demo data and run the daily pipeline on it (embedded defaults)
	$(BIN)/relance demo

PYTEST := $(BIN)/pytest -q -p no:cacheprovider -rs

test: $(STAMP) system-tools ## Run the whole test suite (unit, integration, e2e) and print how long it took
	@start=$$(date +%s); $(PYTEST) --durations=15; status=$$?; \
		echo "make test: $$(( $$(date +%s) - start )) s wall time (exit $$status)"; exit $$status

test-fast: $(STAMP) ## Unit tests only (pure functions, tiny frames; under a minute)
	$(PYTEST) tests/unit

test-integration: $(STAMP) ## Integration tests only (real DuckDB, dbt, GX, MLflow, PostgreSQL, HTTP stand-ins)
	$(PYTEST) -m integration

test-e2e: $(STAMP) ## The end-to-end tests: one README demo run, from the wheel, that every check reads
	$(PYTEST) -m e2e

lint: $(STAMP) ## ruff + sqlfluff (the dbt templater compiles the project against a scratch profile and warehouse)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	scratch=$$(mktemp -d) && RELANCE_DATA_DIR=$$scratch $(BIN)/relance dbt --show debug >/dev/null \
		&& DBT_PROFILES_DIR=$$scratch/dbt $(BIN)/sqlfluff lint dbt_project/models; status=$$?; rm -rf $$scratch; exit $$status

format: $(STAMP) ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

ui: $(STAMP) ## Prefect UI (:4200), MLflow UI (:5000), dbt docs (:8080) on 127.0.0.1
	$(BIN)/relance ui

bench: $(STAMP) ## Pipeline benchmark at demo size and 1M invoices (prints seconds per stage, peak memory)
	$(BIN)/python bench/bench_pipeline.py --sizes 60000 1000000

lock: ## Re-resolve requirements.lock from pyproject.toml (names no index host)
	$(PYTHON) -m venv /tmp/relance-lock && /tmp/relance-lock/bin/pip install --quiet uv
	/tmp/relance-lock/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 --no-header -o requirements.lock

clean: ## Remove the demo data directory, except the send ledger data/ledger/ (and not the venv)
	@if [ -d data ]; then find data -mindepth 1 -maxdepth 1 ! -name ledger -exec rm -rf {} +; fi
	@if [ -d data/ledger ]; then echo "kept data/ledger/: the send ledger (what was sent to whom). Without it every"; \
	  echo "reminder still in its window goes out again; delete it by hand only if nothing ever reached a customer."; fi
