# SnippetVault developer commands. `make help` lists them.
#
# Every target that runs project code depends on $(STAMP), so a fresh clone needs only python3
# (3.11 or newer): the virtualenv is created, or refreshed when requirements.lock or
# pyproject.toml changed, with pip alone.

.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Inside the venv, so deleting .venv also forgets that it was installed.
STAMP := $(VENV)/.installed

PYTEST_ARGS ?=
# `make test` runs pytest on two processes (pytest-xdist): the suite must fit 4 minutes on the
# 2-core CI machine, and half of its time is spent waiting on processes. Tests are dealt out one
# by one (--dist load): --dist loadfile/loadscope keep one of schemathesis' 20 API operations,
# which share one test id, and silently drop the rest. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
ARGS ?=
LOCK_ARGS ?=
MYPY_TARGETS ?= core bot storage mail bench api bootstrap.py

.PHONY: help run worker migrate check lint typecheck test bench lock web clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  Variables: PYTEST_ARGS='-k name -x', PYTEST_WORKERS=0 for test, ARGS='--help' for run/worker/migrate/check/bench,"
	@echo "             LOCK_ARGS=--upgrade for lock, PYTHON=/path/to/python3.11 to pick the interpreter."

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "SnippetVault needs Python 3.11 or newer: '$(PYTHON)' is $$($(PYTHON) --version 2>&1)." \
	       "Run make with PYTHON=/path/to/python3.11." >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -r requirements.lock
	$(BIN)/pip install --no-deps -e .
	@touch $@

run: $(STAMP) ## run the bot (and the email worker) on the settings from the environment or .env
	$(BIN)/snippetvault run $(ARGS)

worker: $(STAMP) ## run only the email outbox worker
	$(BIN)/snippetvault worker $(ARGS)

migrate: $(STAMP) ## apply the database migrations and exit
	$(BIN)/snippetvault migrate $(ARGS)

check: $(STAMP) ## print the effective configuration and whether each backend is reachable
	$(BIN)/snippetvault check $(ARGS)

lint: $(STAMP) ## ruff check
	$(BIN)/ruff check .

typecheck: $(STAMP) ## mypy (strict on core/, per pyproject.toml)
	$(BIN)/mypy $(MYPY_TARGETS)

test: lint typecheck ## the whole suite: ruff, mypy, pytest (PYTEST_ARGS passed to pytest)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist load $(PYTEST_ARGS)

bench: $(STAMP) ## run the benchmarks (python -m bench)
	$(BIN)/python -m bench $(ARGS)

# Both locks come from one resolution: the runtime lock (used by the Dockerfile) is constrained
# by the dev lock, so the image runs exactly the versions the tests ran.
lock: ## regenerate requirements.lock and requirements-runtime.lock (LOCK_ARGS=--upgrade to upgrade)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/pip install uv
	UV_CUSTOM_COMPILE_COMMAND='make lock' $(BIN)/uv pip compile pyproject.toml --extra dev \
	  -o requirements.lock $(LOCK_ARGS)
	UV_CUSTOM_COMPILE_COMMAND='make lock' $(BIN)/uv pip compile pyproject.toml \
	  -c requirements.lock -o requirements-runtime.lock

# The Mini App: web/ built into api/webapp/ (committed, so installing and running need no Node.js).
# `npm ci` installs exactly web/package-lock.json; the build is deterministic, so CI rebuilds and
# diffs the committed files.
web: ## rebuild the Mini App (web/ → api/webapp/; needs Node.js 20 and npm)
	cd web && npm ci --no-audit --no-fund && npm run typecheck && npm run build

clean: ## remove the venv, caches and build output (never ./var, where the data lives)
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -path ./var -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
