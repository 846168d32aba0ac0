# The two commands of the README: `make run` and `make test`. Everything else is set up by them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLES := .cache/fhir-r4-examples/package/package.json
# Days of inpatient stays the demo seeds on first start: the year takes about four minutes
# and ~3 GB; `make run DEMO_DAYS=60` starts in about a minute (~0.7 GB).
DEMO_DAYS ?= 365

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
	$(BIN)/yilian demo --days $(DEMO_DAYS)
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
