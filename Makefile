# The README's commands. Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.skflow-installed
PYTEST_ARGS ?=

.PHONY: gas test docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The pinned CPU build first, so the project's torch requirement is already met.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

gas: $(STAMP)  ## the main job: the GAS density experiment
	$(BIN)/skflow gas

test: $(STAMP)  ## the whole test suite (what CI runs)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

docs: $(STAMP)  ## the Sphinx site, warnings as errors (docs/_build/html)
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

bench: $(STAMP)  ## benchmarks (minutes): gas drift densities, small data, speed vs nflows/zuko (with this CPU's roofline), idle vs busy machine; rewrites the tables of docs/benchmarks.md
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/gas_drift_density.py
	$(BIN)/python benchmarks/small_data.py
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/contention.py
	$(BIN)/python benchmarks/report.py

clean:
	rm -rf $(VENV) results .pytest_cache docs/_build docs/generated docs/auto_examples
