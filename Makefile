# Everything a fresh machine needs is installed by these targets: uv (with pip
# when missing), then the locked environment. Only Python 3.10+ and make are assumed.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# This machine type disables bytecode caching; compiling at install time halves Airflow's import time.
export UV_COMPILE_BYTECODE := 1
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
# The Airflow lines the tests run on are defined in scripts/airflow_lines.py (exact versions, how
# each is installed: MWAA's constraints files where MWAA offers the version; what runs there);
# `make lines` prints them. `make matrix` makes their environments (in build/lines/, kept while
# what they are made from is unchanged), then runs, LINES_JOBS pytest runs at a time:
#   the full suite         on 2.10.1 and 3.0.6 (MWAA's stacks), 3.3.2 (uv.lock) on Python 3.11 and
#                          on Python 3.13 (built once by scripts/python313.sh, cached outside the
#                          tree), each as two shards (the DAG runs, the rest); the emulator's own
#                          tests, which never import Airflow, on 3.3.2 with 3.11 only;
#   the every-line checks  on MWAA's 2.11.2, 3.2.1 and 3.3.1 stacks, and 3.1.8 on 3.11 and 3.13:
#                          registration (providers list/hooks), no warning pointing at our code,
#                          the connection form, deferral timeouts and trigger failures, the example
#                          DAGs, the tutorial with the sensor deferrable and poking, the metrics
#                          sent to StatsD.
LINES_JOBS ?= 4
LINTED := airflow_provider_vbrain emulator tests example_dags scripts benchmarks docs

.PHONY: help uv sync demo demo-ui ui-test docs bench bench-check smoke lint typecheck pytest lines matrix test-line wheel-test managed-check managed-check-write test

help:  ## List the targets.
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

uv:  ## Install uv with pip when it is missing.
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv \
		|| $(PYTHON) -m pip install --quiet --user --break-system-packages uv

sync: uv  ## Create .venv from uv.lock (never changes the lock).
	$(UV) sync --locked

demo: sync  ## The tutorial DAG end to end on the bundled emulator; prints its result.
	$(UV) run --locked python scripts/demo.py demo

demo-ui: sync  ## Real Airflow (standalone) plus the emulator on port 8765 (VBRAIN_EMULATOR_PORT): use the UI.
	$(UV) run --locked python scripts/demo.py ui

ui-test: sync  ## The demo UI checked in Chromium (installed as root when missing): form, Test, a run, job link.
	$(UV) run --locked python scripts/ui_check.py

docs: sync  ## Build the documentation site (warnings are errors) into docs/_build/html.
	$(UV) run --locked sphinx-build -W --keep-going -q -b html docs docs/_build/html

bench: sync  ## Run the benchmarks; rewrite benchmarks/results/ and docs/benchmarks.md (minutes).
	$(UV) run --locked python benchmarks/run.py

bench-check: sync  ## Each benchmark once at a tiny size, to keep the scripts working (writes nothing).
	$(UV) run --locked python benchmarks/run.py --quick --no-write

smoke: sync  ## Example DAGs on real Airflow 3: PostgreSQL, Redis, Celery, triggerer (installs them as root).
	$(UV) run --locked python scripts/smoke.py

lint: sync  ## ruff lint and format check; the layers' import contracts (pyproject's tool.importlinter).
	$(UV) run --locked ruff check $(LINTED)
	$(UV) run --locked ruff format --check $(LINTED)
	$(UV) run --locked lint-imports

typecheck: sync  ## mypy on the package.
	$(UV) run --locked mypy

pytest: sync  ## The test suite on the locked (newest) Airflow.
	$(UV) run --locked pytest

lines:  ## List the Airflow lines the tests run on, their pins and what runs on each.
	$(PYTHON) scripts/airflow_lines.py list

matrix: sync  ## The tests on every Airflow line, from 2.10 to the locked 3.x (lock untouched).
	UV="$(UV)" $(PYTHON) scripts/airflow_lines.py run --jobs $(LINES_JOBS)

test-line: sync  ## One Airflow line's tests, e.g. make test-line LINE=3.1 (LINE=3.3: the locked one).
	UV="$(UV)" $(PYTHON) scripts/airflow_lines.py run $(LINE)

wheel-test: uv  ## The built wheel and sdist checked, then the wheel on the lowest Python, Airflow and dependency floors.
	$(UV) run --no-project python scripts/wheel_test.py

managed-check: uv  ## The built wheel, with and without [openlineage], resolved against each MWAA image's constraints (and Composer's Airflow lines).
	$(UV) run --no-project python scripts/managed_check.py

managed-check-write: uv  ## As managed-check, rewriting the support table in docs/managed-airflow.md.
	$(UV) run --no-project python scripts/managed_check.py --write

test: lint typecheck docs bench-check managed-check matrix wheel-test demo  ## Everything CI checks.
