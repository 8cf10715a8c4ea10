# The two commands a newcomer needs: `make worker` and `make test` (see README).
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: worker test lint install bench mutation

$(BIN)/bullpen: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,examples]"
	touch $@

tests/node/node_modules/.package-lock.json: tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund --loglevel=error

install: $(BIN)/bullpen

# Development mode: restarts on .py changes, and signs export links with a generated secret
# (saved under var/) until EXPORT_TOKEN_SECRET is set in .env.
worker: install
	BULLPEN_ENV=$${BULLPEN_ENV:-development} $(BIN)/bullpen worker --dev

lint: install
	$(BIN)/ruff check src tests $(wildcard bench examples mutation)
	$(BIN)/mypy

test: install tests/node/node_modules/.package-lock.json lint
	$(BIN)/pytest

# Side by side with Node BullMQ; rewrites docs/benchmarks.md (about 30 minutes).
bench: install tests/node/node_modules/.package-lock.json
	$(BIN)/python -m bench

# Mutation testing of the core modules, outside CI (docs/testing.md): one bounded mutmut run per
# module, then the counts and surviving mutants. `make mutation MODULES="reconcile tokens"`.
mutation: install
	$(BIN)/pip install --quiet -e ".[mutation]"
	nice -n 19 $(BIN)/python -m mutation $(MODULES)
