# Josef developer entry points. `make run` and `make test` work on a fresh machine:
# they create .venv, install pinned dependencies (and, for tests, Debian's kcat).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= ./data
PYTEST_ARGS ?=

.PHONY: venv run test lint gen soak bench clean

$(BIN)/.installed: pyproject.toml requirements/runtime.txt requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements/dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

venv: $(BIN)/.installed

## Run a broker on localhost:9092 with its data under $(DATA).
run: $(BIN)/.installed
	$(BIN)/josef serve --override log.dirs=$(DATA)

## The whole test suite (lint, generated-code check, unit, property, compat). CI runs this.
test: $(BIN)/.installed
	scripts/install-system-deps.sh
	$(BIN)/ruff check src tests tools bench
	$(BIN)/python -m pytest -m "not soak" -p no:cacheprovider $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests tools bench

## Regenerate src/josef/protocol/_generated from ../shared/kafka-protocol.
gen: $(BIN)/.installed
	$(BIN)/python -m tools.codegen

## Slow soak, fuzz and crash tests (minutes); not part of `make test`.
soak: $(BIN)/.installed
	scripts/install-system-deps.sh
	$(BIN)/python -m pytest -m soak -p no:cacheprovider $(PYTEST_ARGS)

## Benchmarks (installs the peer broker used for side-by-side ratios).
bench: $(BIN)/.installed
	$(BIN)/pip install -q -r requirements/bench.txt
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
