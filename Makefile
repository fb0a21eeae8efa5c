# propsync developer commands. Everything runs from the repo's own virtualenv,
# built here from pinned requirements: nothing relies on what is installed by hand.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
SAM_VENV ?= .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed
SAM := $(SAM_VENV)/bin/sam
# No telemetry, and a region so that sam validate never asks for one.
SAM_ENV := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-eu-west-1}

.PHONY: help venv browser lint format unit integration test clean run sam-check bench-import bench mutate openapi screenshots

help:
	@echo "make help          this list"
	@echo "make venv          build the dev virtualenv ($(VENV)) with Python 3.13 where available, else 3.11+,"
	@echo "                   and the propsync command in it ($(VENV)/bin/propsync)"
	@echo "make run           start the local stack: API on 127.0.0.1:3000, moto on 127.0.0.1:4566"
	@echo "                   (PROPSYNC_API_PORT, PROPSYNC_AWS_PORT move them)"
	@echo "make test          lint, sam-check and the whole test suite"
	@echo "make browser       install Debian's chromium (apt) for the console's browser tests, where missing"
	@echo "make screenshots   the console's browser tests, then README's two images from their screenshots"
	@echo "make unit          the unit tests only"
	@echo "make integration   the integration tests only (the store on both engines)"
	@echo "make lint          ruff check, ruff format --check, mypy --strict, cfn-lint template.yaml"
	@echo "make format        apply ruff's formatting and autofixes"
	@echo "make sam-check     sam validate (+ --lint) and sam build, with SAM CLI in $(SAM_VENV)"
	@echo "make bench         the performance figures against their bars; rewrites docs/PERFORMANCE.md"
	@echo "make bench-import  import 100,000 rows against the local engine (docs/PERFORMANCE.md)"
	@echo "make openapi       regenerate docs/openapi.json from the models (a test fails when it is stale)"
	@echo "make mutate        mutation testing of the core with mutmut, about 10 min (docs/RELIABILITY.md)"
	@echo "make clean         remove the virtualenvs, node_modules, caches, build output and .local"

# The last step installs this checkout editable (pyproject.toml): the `propsync`
# command, $(VENV)/bin/propsync, runs the sources in layers/propsync as they are.
$(STAMP): requirements-dev.txt layers/propsync/requirements.txt scripts/find-python.sh pyproject.toml
	@python=$$(scripts/find-python.sh) && echo "building $(VENV) with $$python" && \
	  "$$python" -m venv --clear $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --editable .
	@touch $(STAMP)

venv: $(STAMP)

# dynalite, the second DynamoDB engine of the tests, from package-lock.json.
# Its optional LevelDB build script is not needed: the tests run it in memory.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	@touch $(NODE_STAMP)

$(SAM_STAMP): requirements-sam.txt scripts/find-python.sh
	@python=$$(scripts/find-python.sh) && "$$python" -m venv --clear $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet -r requirements-sam.txt
	@touch $(SAM_STAMP)

# sam validate (SAM transform) and --lint (cfn-lint through SAM), then a real
# `sam build` without a container: python3.13, the Lambda runtime, must be on
# PATH for it, so it is taken from where find-python.sh found it.
sam-check: $(SAM_STAMP)
	$(SAM_ENV) $(SAM) validate
	$(SAM_ENV) $(SAM) validate --lint
	@python=$$(scripts/find-python.sh); \
	if "$$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))'; then \
	  echo "sam build (arm64, no container) into .aws-sam/"; \
	  PATH="$$(dirname "$$python"):$$PATH" $(SAM_ENV) $(SAM) build --parallel > .aws-sam-build.log 2>&1 \
	    || { tail -40 .aws-sam-build.log; exit 1; }; \
	  echo "sam build succeeded"; \
	  "$$python" scripts/check-layer-bytecode.py .aws-sam/build/PropsyncLayer/python; \
	else echo "skipping sam build: it needs python3.13, this machine has $$("$$python" -V)"; fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint template.yaml

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

unit: $(STAMP) $(NODE_STAMP)
	$(PY) -m pytest tests/unit

integration: $(STAMP) $(NODE_STAMP)
	$(PY) -m pytest tests/integration

# The console's tests drive a real browser: Debian's chromium, installed with apt
# where it is missing (Playwright's browser download cannot work offline).
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ -x "$(CHROMIUM)" ]; then echo "chromium: $$($(CHROMIUM) --version 2>/dev/null)"; \
	else sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium; fi

test: lint sam-check browser $(NODE_STAMP)
	PROPSYNC_CHROMIUM=$(CHROMIUM) $(PY) -m pytest

# The web console's browser tests leave a screenshot of each page in
# .local/screenshots/; README shows two of them (committed in docs/images/).
CONSOLE_SCREENSHOTS := .local/screenshots
screenshots: $(STAMP) browser
	PROPSYNC_CHROMIUM=$(CHROMIUM) $(PY) -m pytest tests/console -q -p no:randomly
	mkdir -p docs/images
	cp $(CONSOLE_SCREENSHOTS)/test_edit_a_property_and_see_its_new_last_update.png docs/images/console-customer.png
	cp $(CONSOLE_SCREENSHOTS)/test_the_wizard_imports_a_csv_with_an_update_timestamp_column_to_its_report.png docs/images/console-wizard.png

clean:
	rm -rf $(VENV) $(SAM_VENV) node_modules .aws-sam .aws-sam-build.log .pytest_cache .ruff_cache .hypothesis .local .mutate

# The five performance measurements beside their bars; rewrites docs/PERFORMANCE.md, exits 1 on a missed bar.
bench: $(STAMP) sam-check  # sam-check builds the layer whose cold start it also measures
	$(PY) bench/run.py

# Import throughput and memory against the local engine; rewrites its section of docs/PERFORMANCE.md.
bench-import: $(STAMP)
	$(PY) bench/import_local.py --rows 100000 --customers 20000

# The OpenAPI document, generated from the request and answer models (propsync.openapi).
openapi: $(STAMP)
	PYTHONPATH=layers/propsync $(PY) -m propsync.openapi > docs/openapi.json.new
	mv docs/openapi.json.new docs/openapi.json

# Mutation testing of the core (merge rule, timestamps, canonical JSON, properties,
# identity, access, the store's condition builder): every mutant must make a test
# fail; exits 1 under 90% killed. Not part of `make test`: it takes minutes.
mutate: $(STAMP)
	$(PY) scripts/mutate.py

# The Docker-free local stack (moto + HTTP front to the real handlers); Ctrl-C stops it.
run: $(STAMP)
	PYTHONPATH=layers/propsync:local $(PY) -m propsync_local.stack
