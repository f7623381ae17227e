# Josef developer entry points. `make run` and `make test` work on a fresh machine:
# they create .venv, install pinned dependencies (and, for tests, Debian's kcat).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= ./data
PYTEST_ARGS ?=

.PHONY: run test lint gen check-gen soak fuzz bench clean

$(BIN)/.installed: pyproject.toml requirements/runtime.txt requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements/dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

venv: $(BIN)/.installed

## The main job. Until the broker lands (issue 4) this prints the CLI help.
run: $(BIN)/.installed
	$(BIN)/josef --help

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

bench: $(BIN)/.installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
