# Everything a fresh machine needs is installed by these targets: uv (with pip
# when missing), then the locked environment. Only Python 3.10+ and make are assumed.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# This machine type disables bytecode caching; compiling at install time halves Airflow's import time.
export UV_COMPILE_BYTECODE := 1
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
# The lowest Airflow we support, tested beside the locked (newest) one.
AIRFLOW_2_VERSION ?= 2.10.5
# universal-pathlib as Airflow 2.10's own constraints pin it: 0.3 breaks its ObjectStoragePath.
AIRFLOW_2_TEST_DEPS := --with "apache-airflow==$(AIRFLOW_2_VERSION)" --with "universal-pathlib==0.2.6" \
	--with pytest --with pytest-asyncio --with pytest-mock --with pytest-timeout --with jsonschema
LINTED := airflow_provider_vbrain tests example_dags scripts benchmarks docs

.PHONY: help uv sync demo demo-ui docs bench bench-check smoke lint typecheck pytest test-airflow2 test

help:  ## List the targets.
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

uv:  ## Install uv with pip when it is missing.
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv \
		|| $(PYTHON) -m pip install --quiet --user --break-system-packages uv

sync: uv  ## Create .venv from uv.lock (never changes the lock).
	$(UV) sync --locked

demo: sync  ## The tutorial DAG end to end on the bundled emulator; prints its result.
	$(UV) run --locked python scripts/demo.py demo

demo-ui: sync  ## Real Airflow (standalone) plus the emulator: trigger the examples from the UI.
	$(UV) run --locked python scripts/demo.py ui

docs: sync  ## Build the documentation site (warnings are errors) into docs/_build/html.
	$(UV) run --locked sphinx-build -W --keep-going -q -b html docs docs/_build/html

bench: sync  ## Run the benchmarks; rewrite benchmarks/results/ and docs/benchmarks.md (minutes).
	$(UV) run --locked python benchmarks/run.py

bench-check: sync  ## Each benchmark once at a tiny size, to keep the scripts working (writes nothing).
	$(UV) run --locked python benchmarks/run.py --quick --no-write

smoke: sync  ## Example DAGs on real Airflow 3: PostgreSQL, Redis, Celery, triggerer (installs them as root).
	$(UV) run --locked python scripts/smoke.py

lint: sync  ## ruff lint and format check.
	$(UV) run --locked ruff check $(LINTED)
	$(UV) run --locked ruff format --check $(LINTED)

typecheck: sync  ## mypy on the package.
	$(UV) run --locked mypy

pytest: sync  ## The test suite on the locked (newest) Airflow.
	$(UV) run --locked pytest

# With the [openlineage] extra, so lineage is tested there too (it resolves the newest provider that
# supports that Airflow).
test-airflow2: uv  ## The test suite again on the lowest Airflow 2 (AIRFLOW_2_VERSION), lock untouched.
	$(UV) run --isolated --no-project --with-editable ".[openlineage]" $(AIRFLOW_2_TEST_DEPS) pytest

test: lint typecheck docs bench-check pytest test-airflow2 demo  ## Everything CI checks.
