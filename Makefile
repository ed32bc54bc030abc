# One command per job; each installs what it needs first (into .venv).
#   make smoke   the main job: the acceptance suite on the bundled smoke profile
#   make test    the test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build by default: a bare `pip install torch` pulls multi-GB CUDA wheels.
# On a GPU runner: make install TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
TORCH ?= torch==2.13.0

.PHONY: install smoke test clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# Writes reports/acceptance.html (+ .md, .json, benchmark.json); reruns reuse artifacts/acceptance/smoke.
smoke: install
	$(BIN)/python -m pytest acceptance/

test: install
	$(BIN)/python -m pytest tests/
	$(BIN)/python -m pytest acceptance/

clean:
	rm -rf $(VENV) artifacts reports .pytest_cache
