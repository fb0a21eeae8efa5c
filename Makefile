# propsync developer commands. Everything runs from the repo's own virtualenv,
# built here from pinned requirements: nothing relies on what is installed by hand.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help venv lint format unit integration test clean run

help:
	@echo "make venv   build the dev virtualenv ($(VENV)) with Python 3.13 where available, else 3.11+"
	@echo "make run    start the local stack: API on 127.0.0.1:3000, moto on 127.0.0.1:4566"
	@echo "make test   lint (ruff, mypy, cfn-lint) and run the whole test suite"
	@echo "make lint   ruff check, ruff format --check, mypy --strict, cfn-lint template.yaml"
	@echo "make format apply ruff's formatting and autofixes"
	@echo "make clean  remove the virtualenv and caches"

$(STAMP): requirements-dev.txt layers/propsync/requirements.txt scripts/find-python.sh
	@python=$$(scripts/find-python.sh) && echo "building $(VENV) with $$python" && \
	  "$$python" -m venv --clear $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint template.yaml

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

unit: $(STAMP)
	$(PY) -m pytest tests/unit

integration: $(STAMP)
	$(PY) -m pytest tests/integration

test: lint
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

# The Docker-free local stack (moto + HTTP front to the real handlers); Ctrl-C stops it.
run: $(STAMP)
	PYTHONPATH=layers/propsync:local $(PY) -m propsync_local.stack
