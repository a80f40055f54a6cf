# The two commands of the README: `make serve` and `make test`. Both build the environment first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/cds assess --input examples/runner_pfp_hip_driven.json --explain

lint: $(STAMP)
	$(BIN)/ruff check cds training service tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/assess.py
	$(BIN)/python bench/simulate.py
	$(BIN)/python bench/train.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
