# rnnbench: `make run` sets up .venv and runs the quick pipeline; `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export NUMBA_CACHE_DIR ?= $(abspath .numba_cache)
# Unset where the environment sets it, so that Python keeps each module's bytecode (__pycache__)
# the first time it imports it: otherwise every stage would compile torch's and MLflow's sources.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup fonts run test test-all test-browser lint ui clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# No byte-compiling at install (pip would compile all 20,000 files, ~45 s even on every
	@# core): Python compiles each module the first time it is imported and keeps the .pyc.
	$(BIN)/python -m pip install --quiet --no-compile -c constraints.txt -e '.[dev]'
	touch $@

setup: $(VENV)/.installed fonts  ## create .venv with the exact versions in constraints.txt

# A font with Korean glyphs for the report's figures (the dates task shows Korean dates): Debian's
# fonts-noto-cjk, installed when running as root with apt-get and no such font is present;
# elsewhere it says so and the figures lack those glyphs (install any CJK font yourself).
fonts:
	@if fc-list :lang=ko 2>/dev/null | grep -q .; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    --no-install-recommends fonts-noto-cjk) >/dev/null || echo "fonts-noto-cjk not installed"; \
	else echo "no font with Korean glyphs: the dates figure will lack them (fonts-noto-cjk)"; fi

# Stages start in a process forked from one that has imported torch and MLflow already
# (rnnbench/warm.py); without it, every stage would spend ~7 s importing them. Meanwhile it has
# the second core compile the Numba kernels into NUMBA_CACHE_DIR (~35 s on a fresh clone), so
# the Numba stages load them in a second instead of compiling them on the critical path.
WARM := $(abspath .warm.sock)
REPRO_FLAGS ?=  # e.g. --force to re-run every stage (DVC otherwise restores cached results)

run: setup  ## dvc repro on the quick profile (params.yaml), then say where the report is
	@rm -f $(WARM); rnnbench warm --socket $(WARM) --compile & pid=$$!; \
	for i in $$(seq 300); do [ -S $(WARM) ] && break; sleep 0.2; done; \
	RNNBENCH_WARM=$(WARM) dvc repro $(REPRO_FLAGS); rc=$$?; kill $$pid; wait $$pid 2>/dev/null; exit $$rc
	@echo ""
	@echo "Report:  $(abspath reports/benchmark.md)  (one page: $(abspath reports/benchmark.html))"
	@echo "Runs:    make ui   (MLflow UI on http://127.0.0.1:5000)"
	@echo "Metrics: dvc metrics show    Plots: dvc plots show"

test: setup  ## the test suite (slow and GPU tests excluded)
	pytest -q

test-all: setup  ## every test, slow ones included (GPU tests skip where no GPU is present)
	RNNBENCH_INSTALL_BROWSER=1 pytest -q -m "slow or not slow"

test-browser: setup  ## the HTML report in headless chromium (installed as root if missing)
	pytest -q -m browser

lint: setup
	ruff check .

ui: setup  ## the MLflow UI for this project's store, bound to 127.0.0.1
	rnnbench ui

clean:  ## remove generated results (keeps .venv and the MLflow store)
	rm -rf data results reports/figures reports/plots reports/benchmark.md reports/benchmark.html dvc.lock
