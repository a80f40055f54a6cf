# The two commands of the README: `make serve` and `make test`. Both build the environment first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

MODEL_VERSION ?= 0.2.0

.PHONY: serve test lint bench model clean environment

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The environment: the venv; Debian's chromium for the real-browser tests (Playwright drives
# /usr/bin/chromium; it never downloads a browser); Debian's PostgreSQL for the store's tests on
# PostgreSQL (they start a throwaway server of their own). CI and developers run as root.
environment: $(STAMP)
	@test -x /usr/bin/chromium || { apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; }
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; }

# loopback development server: auth is off unless GMED_AUTH=jwt (the service warns at start),
# the clinician page needs no SMART launch unless GMED_UI_AUTH=smart;
# development mode allows that and the per-instance pseudonym key (production refuses both)
serve: $(STAMP)
	GMED_ENVIRONMENT=$${GMED_ENVIRONMENT:-development} GMED_AUTH=$${GMED_AUTH:-off} \
		GMED_UI_AUTH=$${GMED_UI_AUTH:-off} \
		$(BIN)/gunicorn -c service/gunicorn_conf.py "service:create_app()"

lint: $(STAMP)
	$(BIN)/ruff check cds training service tests bench
	$(BIN)/mypy

test: environment lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/assess.py
	$(BIN)/python bench/simulate.py
	$(BIN)/python bench/train.py

# Rebuild the shipped model from its recipe: 200k simulated patients to train, 20k held out.
model: $(STAMP)
	$(BIN)/cds simulate --n 200000 --seed 1 --out data/train.parquet
	$(BIN)/cds simulate --n 20000 --seed 2 --out data/eval.parquet
	rm -rf models/gmed-driver/$(MODEL_VERSION)
	$(BIN)/cds train --data data/train.parquet --eval-data data/eval.parquet \
		--out models/gmed-driver/$(MODEL_VERSION)
	$(BIN)/cds models promote $(MODEL_VERSION) --alias production

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
