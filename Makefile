# aws-eventdriven: the order pipeline on a local AWS. `make help` lists the targets.
SHELL := bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The tools are the package tools/sandbox/: `$(TOOL).x` runs sandbox/x.py with the venv; `make url` runs before it.
TOOL := $(PY) -m sandbox
BARE_TOOL := PYTHONPATH=tools $(PYTHON) -m sandbox

# The sandbox's AWS: boto3 and every tool read AWS_ENDPOINT_URL; the credentials are the emulator's dummies.
export AWS_ENDPOINT_URL ?= http://localhost:4566
export AWS_DEFAULT_REGION ?= us-east-1
export AWS_ACCESS_KEY_ID ?= test
export AWS_SECRET_ACCESS_KEY ?= test
export STACK_NAME ?= order-pipeline
export STRICT_DOCUMENTS ?= false

# Real AWS (docs/AWS.md): drop the sandbox endpoint and dummy keys set above, keep any you export yourself.
AWS_REAL := env $(foreach v,AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY,$(if $(filter file,$(origin $(v))),-u $(v)))
AWS_TARGET = --stack $(or $(STACK),$(error set STACK=<stack name>)) --region $(or $(REGION),$(error set REGION=<aws region>))

SEED_FILE ?= seed/products.json
PERSIST ?= 0
PYTEST_ARGS ?=

.PHONY: help up down deploy seed status restock reset test test-heavy unit e2e e2e-gateway url outputs logs notifications ui dlq redrive soak bench deploy-aws destroy-aws model openapi lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

up: $(STAMP) ## start MiniStack (no Docker), deploy the stack, seed the stock, print the API URL
	$(TOOL).emulator start $(if $(filter 1,$(PERSIST)),--persist)
	@bash localstack/init/ready.d/10-deploy.sh > /dev/null
	@$(TOOL).banner

down: ## stop the MiniStack this project started, with all its Lambda workers and temporary folders
	@$(TOOL).emulator stop

deploy: $(STAMP) ## package functions/ and create or update the stack (idempotent)
	@bash localstack/init/ready.d/10-deploy.sh

seed: $(STAMP) ## set product stock from $(SEED_FILE)
	$(VENV)/bin/sandbox seed $(SEED_FILE)

status: $(STAMP) ## stack outputs, queue depths (DLQs too), orders by status, stock
	@$(VENV)/bin/sandbox status

restock: $(STAMP) ## add stock through the API, wait for the release: PRODUCT=PRD-1001 N=10 [KEY=idempotency-key]
	@$(VENV)/bin/sandbox restock $(or $(PRODUCT),$(error set PRODUCT=<product id>)) $(or $(N),$(error set N=<units>)) $(if $(KEY),--key $(KEY))

reset: $(STAMP) ## wipe orders and stock (asks first), keep the infrastructure, then re-seed
	$(VENV)/bin/sandbox reset

test: $(STAMP) ## unit tests, then e2e tests against the sandbox (started if none answers)
	$(PY) -m pytest tests/unit -n 2 $(PYTEST_ARGS)
	@$(TOOL).emulator status > /dev/null || $(MAKE) --no-print-directory up
	@test -f .sandbox/outputs.json || bash localstack/init/ready.d/10-deploy.sh > /dev/null
	@$(MAKE) --no-print-directory e2e

test-heavy: $(STAMP) ## the long load tests (a 10,000-order file), against the running sandbox; CI runs them
	@$(TOOL).emulator status > /dev/null || $(MAKE) --no-print-directory up
	$(PY) -m pytest tests/e2e -m heavy $(PYTEST_ARGS)

unit: $(STAMP) ## unit tests only (no network)
	$(PY) -m pytest tests/unit -n 2 $(PYTEST_ARGS)

# Two workers, then the tests that share the sandbox with no other (tests/e2e/conftest.py); exit 5: PYTEST_ARGS kept none.
e2e: $(STAMP) ## e2e tests against the running sandbox (without the heavy ones)
	$(PY) -m pytest tests/e2e -m "not heavy and not alone" -n 2 --dist loadgroup $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(PY) -m pytest tests/e2e -m "alone and not heavy" $(PYTEST_ARGS) || [ $$? -eq 5 ]

API_TESTS := tests/e2e/test_api.py tests/e2e/test_bad_input_api.py tests/e2e/test_schemathesis.py
e2e-gateway: $(STAMP) ## the API e2e tests again with the gateway enforcing its model (switched on where it is off, then back)
	@$(TOOL).gateway enforce
	@status=0; $(PY) -m pytest $(API_TESTS) $(PYTEST_ARGS) || status=$$?; $(TOOL).gateway restore; exit $$status

url: ## print the API base URL, for a shell: API=$$(make -s url)
	@$(BARE_TOOL).banner --url

outputs: ## print the stack outputs (.sandbox/outputs.json)
	@cat .sandbox/outputs.json 2>/dev/null || { echo "no outputs yet: run 'make up'" >&2; exit 1; }

logs: $(STAMP) ## print the Lambda functions' logs (FUNCTION=api|file-validator|processor|restocker|sweeper to pick one)
	@$(VENV)/bin/sandbox logs $(FUNCTION)

notifications: $(STAMP) ## print what reached the SNS topics since the last call
	@$(VENV)/bin/sandbox notifications

ui: $(STAMP) ## serve the console (live architecture, orders and their traces, files, actions) on http://localhost:8765 [UI_PORT=...]
	@$(VENV)/bin/sandbox ui $(if $(UI_PORT),--port $(UI_PORT))

dlq: $(STAMP) ## list what is in the dead-letter queues (personal data masked)
	@$(TOOL).dlq list

redrive: $(STAMP) ## move dead-lettered messages back to their source queues (after fixing the cause)
	@$(TOOL).dlq redrive

bench: $(STAMP) ## benchmark against minimal floors: N orders (2000) by C clients (16), a FILE_N-order file (10000)
	$(TOOL).bench --n $(or $(N),2000) --clients $(or $(C),16) --file-n $(or $(FILE_N),10000) $(BENCH_ARGS)

soak: $(STAMP) ## soak with N orders (2000) plus bad input, check the books balance; CHAOS=1 kills Lambda workers throughout
	$(TOOL).soak -n $(or $(N),2000) $(if $(filter 1,$(CHAOS)),--chaos $(if $(CHAOS_INTERVAL),--chaos-interval $(CHAOS_INTERVAL)))

deploy-aws: $(STAMP) ## deploy to real AWS: STACK=name REGION=region [EMAIL=addr] [ARGS=--dry-run]
	@$(AWS_REAL) $(TOOL).deploy.aws deploy $(AWS_TARGET) $(if $(EMAIL),--notification-email $(EMAIL)) $(ARGS)

destroy-aws: $(STAMP) ## delete the AWS stack: STACK=name REGION=region [ARGS="--empty-data-lake --delete-artifacts"]
	@$(AWS_REAL) $(TOOL).deploy.aws destroy $(AWS_TARGET) $(ARGS)

model: $(STAMP) ## regenerate, from the order schema, the API Gateway model (infra/template.yaml) and the validator (functions/orders/order_schema.py)
	$(PY) -m sandbox.model

openapi: $(STAMP) ## regenerate docs/openapi.yaml from the order schema
	$(PY) -m sandbox.openapi

lint: $(STAMP) ## cfn-lint, ruff (lint, format), mypy --strict on functions/, API model, validator and OpenAPI drift
	$(VENV)/bin/cfn-lint infra/template.yaml
	$(VENV)/bin/ruff check functions tools tests
	$(VENV)/bin/ruff format --check functions tools tests
	cd functions && ../$(VENV)/bin/mypy --strict -p orders -p service -p handlers
	$(PY) -m sandbox.model --check
	$(PY) -m sandbox.openapi --check

clean: down ## stop the sandbox and remove .sandbox/ and .venv/
	rm -rf .sandbox $(VENV) .pytest_cache
