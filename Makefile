# Two entry points, as in the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

.PHONY: install demo install-test test lint

install: $(BIN)/python
	$(BIN)/pip install --quiet .

demo: install
	$(BIN)/debrief reflect examples/2026-11-20-acme.md --show-sources

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

test: install-test
	$(BIN)/ruff check pipeline tests bench
	$(BIN)/python -m pytest -q
