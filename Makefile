# The two commands of the README: `make run` and `make test`. Everything else is set up by them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLES := .cache/fhir-r4-examples/package/package.json

.PHONY: run test bench lint clean examples

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(EXAMPLES):
	scripts/fetch-fhir-examples.sh

examples: $(EXAMPLES)

run: $(STAMP)
	$(BIN)/yilian db upgrade
	$(BIN)/yilian users demo
	$(BIN)/yilian serve

test: $(STAMP) $(EXAMPLES)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP) $(EXAMPLES)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .cache yilian.db yilian.db-wal yilian.db-shm yilian.db-writer.lock
