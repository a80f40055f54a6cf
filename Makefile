# The two commands of the README: `make serve` and `make test`. Both build the environment first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

MODEL_VERSION ?= 0.2.0

.PHONY: serve serve-production test lint bench model clean environment

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The environment: the venv; Debian's chromium for the real-browser tests (Playwright drives
# /usr/bin/chromium; it never downloads a browser); Debian's PostgreSQL for the store's tests on
# PostgreSQL (they start a throwaway server of their own); Debian's nginx for the production
# stack and its tests (make serve-production starts it; the package's own service is not used);
# Debian's strace for the durability test (it counts the store's fsyncs). CI and developers run
# as root.
environment: $(STAMP)
	@test -x /usr/bin/chromium || { apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; }
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; }
	@test -x /usr/sbin/nginx || { apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y nginx-light; }
	@test -x /usr/bin/strace || { apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y strace; }

# loopback development server: auth is off unless GMED_AUTH=jwt (the service warns at start),
# the clinician page needs no SMART launch unless GMED_UI_AUTH=smart;
# development mode allows that and the per-instance pseudonym key (production refuses both);
# outbound calls (a loopback EHR's FHIR server, keys, SMART) may reach 127.0.0.1 and localhost
serve: $(STAMP)
	GMED_ENVIRONMENT=$${GMED_ENVIRONMENT:-development} GMED_AUTH=$${GMED_AUTH:-off} \
		GMED_UI_AUTH=$${GMED_UI_AUTH:-off} \
		GMED_OUTBOUND_PRIVATE_HOSTS=$${GMED_OUTBOUND_PRIVATE_HOSTS:-127.0.0.1,localhost} \
		$(BIN)/gunicorn -c service/gunicorn_conf.py "service:create_app()"

# production: nginx (GMED_PROXY_LISTEN, default 127.0.0.1:8080) in front of gunicorn on a unix
# socket in the instance folder; production settings are required (see README, "Production
# serving"); Ctrl-C or SIGTERM stops both. Needs Debian's nginx (make environment installs it)
serve-production: $(STAMP)
	$(BIN)/python -m deploy.serve

lint: $(STAMP)
	$(BIN)/ruff check cds training service tests bench deploy
	$(BIN)/mypy
	$(BIN)/mypy deploy
	$(BIN)/lint-imports --no-cache

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
