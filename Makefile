# stackgen: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SPEC ?= slos.yaml
OUT ?= output
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/stackgen: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.dev-installed: $(BIN)/stackgen
	$(BIN)/pip install --quiet -e '.[test,dev]'
	@touch $@

venv: $(BIN)/stackgen ## Create .venv with stackgen installed

render: $(BIN)/stackgen ## Render slos.yaml into output/ (SPEC=, OUT= to change)
	$(BIN)/stackgen render --spec $(SPEC) --out $(OUT)

check: $(BIN)/stackgen ## Fail when output/ is stale (what CI runs)
	$(BIN)/stackgen render --spec $(SPEC) --out $(OUT) --check

validate: $(BIN)/stackgen ## Run promtool, amtool and the compose schema on output/
	$(BIN)/stackgen validate --spec $(SPEC) --out $(OUT)

explain: $(BIN)/stackgen ## Print the burn-rate math of every SLO
	$(BIN)/stackgen explain --spec $(SPEC)

test-deps: $(VENV)/.dev-installed ## Install what the tests need: Python deps, promtool/amtool, node-exporter, LogQL parser
	@if ! command -v promtool >/dev/null || ! command -v amtool >/dev/null || ! command -v prometheus-node-exporter >/dev/null; then \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
			prometheus prometheus-alertmanager prometheus-node-exporter >/dev/null; \
	fi
	@if [ -f tests/tools/logql/package-lock.json ] && [ ! -d tests/tools/logql/node_modules ]; then \
		npm ci --prefix tests/tools/logql --no-audit --no-fund --loglevel=error; \
	fi

test: test-deps ## Run every test (installs what it needs first)
	STACKGEN_REQUIRE_TOOLS=1 $(BIN)/pytest -q

FUZZ_EXAMPLES ?= 2000
fuzz: test-deps ## Property tests with a large budget (FUZZ_EXAMPLES= generated, mutated specs; default 2,000 each)
	STACKGEN_REQUIRE_TOOLS=1 STACKGEN_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q -s tests/test_property.py -k "valid_generated or mutated or broken_yaml"

bench: test-deps ## B1 render speed/memory/cold start, B2 rule cost in a real Prometheus; writes bench/results/latest.md
	cd bench && ../$(BIN)/python run.py && ../$(BIN)/python b2.py

lint: $(VENV)/.dev-installed ## ruff (lint + format check) and mypy
	$(BIN)/ruff check stackgen tests
	$(BIN)/ruff format --check stackgen
	$(BIN)/mypy

format: $(VENV)/.dev-installed ## Format the code with ruff
	$(BIN)/ruff format stackgen tests
	$(BIN)/ruff check --fix stackgen tests

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: help venv render check validate explain test-deps test fuzz bench lint format clean
