# Two entry points, as in the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

.PHONY: install demo install-test test lint eval-gate fuzz

install: $(BIN)/python
	$(BIN)/pip install --quiet .

demo: install
	$(BIN)/debrief reflect examples/2026-11-20-acme.md --show-sources

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

lint: install-test
	$(BIN)/ruff check pipeline tests bench

# The offline eval gates: the offline engine and the recorded model answers, against
# eval/baseline.json, in a throwaway DEBRIEF_HOME so nothing of yours is touched.
eval-gate: install-test
	@home=$$(mktemp -d) && \
	DEBRIEF_HOME=$$home $(BIN)/debrief eval --mode offline --fail-on-regression \
	  --report-dir eval/reports/latest/offline && \
	DEBRIEF_HOME=$$home $(BIN)/debrief eval --mode replay --fail-on-regression \
	  --report-dir eval/reports/latest/replay; \
	status=$$?; rm -rf $$home; exit $$status

test: lint eval-gate
	$(BIN)/python -m pytest -q

# The full fuzzing profile: 5,000 generated inputs per entry point (tests/test_fuzz.py);
# prints how many inputs each entry point ran and how long it took.
fuzz: install-test
	DEBRIEF_FUZZ=full $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/test_fuzz.py
