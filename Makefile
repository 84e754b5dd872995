# Recharge center — verb targets. `make run` and `make test` are all a newcomer needs.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTO_SRC := $(wildcard protos/*/v1/*.proto)

.PHONY: setup run test test-long lint protos protos-check bench bench-card chaos clean browser

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install pinned dependencies

protos: $(STAMP) ## regenerate Python code and mypy stubs from protos/*/v1/*.proto
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m grpc_tools.protoc -I . \
	  --python_out=. --grpc_python_out=. \
	  --mypy_out=quiet:. --mypy_grpc_out=quiet:. \
	  $(PROTO_SRC)

protos-check: $(STAMP) ## fail when checked-in generated code is stale
	$(BIN)/python -m scripts.check_protos

run: $(STAMP) ## start all three services with SQLite under var/ and the operators' console on :8080 (Ctrl-C stops them)
	$(BIN)/python -m scripts.run_stack

# Debian's Chromium, its WebDriver and a CJK font (the console's Chinese pages) for the browser tests.
BROWSER_PACKAGES := chromium chromium-driver fonts-wqy-microhei

browser: ## headless Chromium + chromedriver for the console's browser tests: installed when missing, as root
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing $(BROWSER_PACKAGES) for the browser tests"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(BROWSER_PACKAGES); \
	else echo "browser tests will skip: chromium and chromium-driver are missing (make browser as root installs them)"; fi

test: $(STAMP) protos-check browser ## the whole default suite (starts every server it needs)
	$(BIN)/python -m pytest -q --durations=25

test-long: $(STAMP) ## the long run: tests marked `long` (e.g. the 500-call overload burst on a real stack)
	$(BIN)/python -m pytest -q -m long

lint: $(STAMP) ## ruff on the whole tree, strict mypy on the services and scripts (what CI runs)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench-card: $(STAMP) ## card system alone: PreRecharge/s and ConfirmRecharge/s
	$(BIN)/python -m scripts.bench.card

bench: $(STAMP) ## bare chain vs real services, per-service DB work per top-up, goals table, metrics on vs off (BENCH_ARGS="--db postgresql")
	$(BIN)/python -m scripts.bench --backlog 10000 --metrics both $(BENCH_ARGS)

.PHONY: bench-replicas
bench-replicas: $(STAMP) ## one run, side by side: SQLite, PostgreSQL with 1 and with 2 recharge-center replicas (~3 min)
	$(BIN)/python -m scripts.bench --compare --levels 8,32 --duration 8 $(BENCH_ARGS)

.PHONY: fuzz
fuzz: $(STAMP) ## long fuzz run over every RPC, on SQLite then PostgreSQL (FUZZ_EXAMPLES=2000, FUZZ_SEED=...)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-2000} $(BIN)/python -m pytest -q tests/fuzz
	FUZZ_DB=postgresql FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-2000} $(BIN)/python -m pytest -q tests/fuzz

chaos: $(STAMP) ## every chaos profile x 20 seeds x 200 orders, invariants checked after each run: all five passes below (~5 h)
	$(BIN)/python -m scripts.chaos --long

.PHONY: chaos-1 chaos-2 chaos-3 chaos-http chaos-http-2
chaos-1: $(STAMP) ## one pass of make chaos: 1 replica on SQLite (~1 h)
	$(BIN)/python -m scripts.chaos --long --replicas 1

chaos-2: $(STAMP) ## one pass of make chaos: 2 replicas on PostgreSQL, kill -9 of either (~1 h)
	$(BIN)/python -m scripts.chaos --long --replicas 2 --db postgresql

chaos-3: $(STAMP) ## one pass of make chaos: 3 replicas on PostgreSQL, kill -9 of any (~1 h)
	$(BIN)/python -m scripts.chaos --long --replicas 3 --db postgresql

chaos-http: $(STAMP) ## one pass of make chaos: the HTTP wire (WeChat Pay APIv3), 1 replica on SQLite (~1 h)
	$(BIN)/python -m scripts.chaos --long --replicas 1 --wire http

chaos-http-2: $(STAMP) ## one pass of make chaos: the HTTP wire, 2 replicas on PostgreSQL (~1 h)
	$(BIN)/python -m scripts.chaos --long --replicas 2 --db postgresql --wire http

clean:
	rm -rf var .pytest_cache .mypy_cache
