# Credit Commons — the two commands: `make run` and `make test`.
# Both create .venv from the committed lock (requirements.lock) when needed; both are idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ZK_NODE := src/credit_commons/zk/node
ZK_STAMP := $(ZK_NODE)/node_modules/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck imports unit lock bench clean services system-deps hsm screenshots routes

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

.PHONY: venv
venv: $(STAMP) $(ZK_STAMP)

# The zk layer's Node packages (snarkjs, circom2, circomlib, @noble/curves), pinned by the
# committed package-lock.json and installed beside it (ZK_NODE).
$(ZK_STAMP): $(ZK_NODE)/package.json $(ZK_NODE)/package-lock.json
	@command -v node >/dev/null || { echo "Node.js 20+ is needed for zero-knowledge proofs (docs/zk.md)"; exit 1; }
	npm ci --prefix $(ZK_NODE) --no-audit --no-fund --loglevel=error
	@touch $(ZK_STAMP)

run: $(STAMP) $(ZK_STAMP)
	$(BIN)/commons db upgrade
	$(BIN)/commons serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

# The layering (docs/architecture.md) as import-linter contracts ([tool.importlinter] in
# pyproject.toml).
imports: $(STAMP)
	$(BIN)/lint-imports --no-cache --no-logo

# System packages for tests with real components (SoftHSM2); installed when missing.
system-deps:
	@scripts/ensure-system-deps.sh

# The suite runs in TEST_WORKERS processes (pytest-xdist), one per core of this project's
# machines; with work stealing an idle worker takes half of the other's remaining tests
# (plain `--dist load` left one worker idle for minutes at the end).  docs/testing.md says
# what keeps a test safe to run in parallel.  `make test TEST_WORKERS=0` runs it serially.
TEST_WORKERS ?= 2

# The suite starts hundreds of Python processes (`commons serve`, CLI commands, workers, the
# bench scripts); each compiled every module it imported again wherever the environment sets
# PYTHONDONTWRITEBYTECODE (this project's machines do), about 0.4 s of CPU for the HTTP app
# alone.  For the suite, bytecode is written once and reused, under .venv (no __pycache__ in
# the tree; Python checks each file's source size and time before using it).
test: export PYTHONPYCACHEPREFIX := $(abspath $(VENV))/pycache
test: export PYTHONDONTWRITEBYTECODE :=
test: system-deps lint typecheck imports $(ZK_STAMP)
	$(BIN)/python -m pytest -W error -n $(TEST_WORKERS) --dist worksteal

# The route registry (docs/operations.md): rebuilt from the app with its pinned SHA-256 after
# adding, removing or re-declaring a route; a test fails while the committed one is stale.
# deploy/ carries no hash: operators set COMMONS_SURFACE_REGISTRY_SHA256 to the one they audit.
routes: $(STAMP)
	$(BIN)/commons routes build

# The console's screenshots in docs/console/ (the browser tests, capturing as they go).
screenshots: $(STAMP) $(ZK_STAMP) system-deps
	COMMONS_TEST_SCREENSHOTS=1 $(BIN)/python -m pytest -W error -n $(TEST_WORKERS) --dist worksteal tests/browser

bench: $(STAMP) $(ZK_STAMP) system-deps
	$(BIN)/python bench/keys.py
	$(BIN)/python bench/vault.py
	$(BIN)/python bench/ledger.py
	$(BIN)/python bench/credentials.py
	$(BIN)/python bench/consent.py
	$(BIN)/python bench/verifier.py
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/web.py
	$(BIN)/python bench/zk.py
	$(BIN)/python bench/federation_publish.py
	$(BIN)/python bench/monitor.py

# A development SoftHSM2 token under var/softhsm; eval "$$(make -s hsm)" exports its settings.
hsm: system-deps
	@scripts/softhsm-init.sh var/softhsm

# Regenerate the lock after changing dependencies in pyproject.toml (needs `uv`).
lock:
	uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
