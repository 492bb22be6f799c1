# The two commands of the README: `make demo` (main job) and `make test` (whole suite).
# Each creates .venv if missing and installs the project into it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint gains clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml requirements-dev.txt
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/initwise demo

gains: $(STAMP)
	$(BIN)/initwise gains

lint: $(STAMP)
	$(BIN)/ruff check initwise tests benchmarks examples

test: $(STAMP) lint
	bash scripts/ensure-browser.sh
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
