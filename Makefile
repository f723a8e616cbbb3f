# schoolbackup — the verbs a newcomer looks for. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CDK    := npx --no-install cdk

# Offline, credential-free synth: no notices, telemetry, version checks or Node end-of-life banner.
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# Synth never needs AWS credentials; with any exported, the CDK CLI would try to reach STS.
NO_AWS := env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_SECURITY_TOKEN -u AWS_PROFILE

.PHONY: help setup demo test lint format typecheck unit integration synth permissions bench deploy clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "schoolbackup needs Python 3.11 or newer (found " + sys.version.split()[0] + "); set PYTHON=python3.12 or similar")'
	@command -v node >/dev/null || { echo "schoolbackup needs Node.js (for the CDK); install Node.js 20 or newer"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .  # .venv/bin/backupctl
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(VENV)/.installed node_modules/.installed  ## create .venv and node_modules when missing

demo: setup  ## synthesize the stack offline, print what would be deployed, rehearse 120 days of it (no AWS account)
	@$(PY) -m infra.preflight --json-only
	@$(NO_AWS) $(CDK) synth --quiet >/dev/null 2>.synth.log || { cat .synth.log; exit 1; }
	@$(PY) -m cli.summary cdk.out/SchoolBackup.template.json
	@echo; echo "== backupctl simulate: 120 days of every job, locally (moto), with this cdk.json"
	@$(NO_AWS) $(VENV)/bin/backupctl simulate --days 120

lint: setup  ## ruff (lint + format check) and mypy
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: setup  ## apply ruff's fixes and formatting
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

unit: setup  ## all pytest tests (integration tests skip without local databases unless CI is set)
	$(NO_AWS) $(PY) -m pytest -n 2 --dist loadgroup

synth: setup  ## offline cdk synth with cdk-nag
	@$(PY) -m infra.preflight --json-only
	$(NO_AWS) $(CDK) synth --quiet >/dev/null
	@echo "cdk synth: ok (cdk-nag AwsSolutions: no unacknowledged findings)"

permissions: setup  ## the IAM evaluator's decision table for the synthesized policies
	@$(NO_AWS) $(PY) -m tests.iam.table

test: lint unit synth  ## everything CI runs: lint, types, tests, offline synth

bench: setup  ## the benchmarks under tests/bench (slow; prints ratios)
	@failed=""; for b in tests/bench/*.py; do echo "== $$b"; $(NO_AWS) $(PY) $$b || failed="$$failed $$b"; done; \
	  if [ -n "$$failed" ]; then echo "benchmarks that missed a target or failed:$$failed"; exit 1; fi

deploy: setup  ## cdk deploy --all: the stack (with offsite copies first the offsite stack, into another account also the staging stack); needs AWS credentials
	@$(PY) -m infra.preflight
	$(CDK) deploy --all --require-approval broadening

clean:  ## remove build output (keeps .venv and node_modules)
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache .hypothesis
