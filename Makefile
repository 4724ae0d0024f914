# faceit-voice: every developer and CI command. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
GEN := gen
PROTO_SRC := $(wildcard protos/faceitvoice/v1/*.proto)

.PHONY: help setup protos proto-check lint test test-fast run demo bench compose-check clean

help: ## List the commands.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,embedded]'
	@touch $(STAMP)

setup: $(STAMP) ## Create .venv and install the project, the dev tools and the embedded Postgres.

protos: $(STAMP) ## Generate the Python package faceitvoice.v1 (with .pyi stubs) from protos/.
	@rm -rf $(GEN)/faceitvoice && mkdir -p $(GEN)
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=$(GEN) --grpc_python_out=$(GEN) \
	  --plugin=protoc-gen-mypy=$(VENV)/bin/protoc-gen-mypy --mypy_out=$(GEN) \
	  --plugin=protoc-gen-mypy_grpc=$(VENV)/bin/protoc-gen-mypy_grpc --mypy_grpc_out=$(GEN) \
	  $(PROTO_SRC) 2> >(grep -v '^Writing mypy to' >&2)
	@echo '"""Generated code of the faceit-voice protos (make protos); do not edit."""' > $(GEN)/faceitvoice/__init__.py
	@echo '"""Generated code of faceitvoice.v1 (make protos); do not edit."""' > $(GEN)/faceitvoice/v1/__init__.py

proto-check: $(STAMP) ## Fail when the generated code in gen/ is stale.
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  cp -r $(GEN) "$$tmp/before"; \
	  $(MAKE) --no-print-directory -s protos >/dev/null; \
	  if ! diff -r -x __pycache__ "$$tmp/before" $(GEN) >/dev/null; then \
	    { diff -r -x __pycache__ "$$tmp/before" $(GEN) || true; } | head -20; rm -rf $(GEN); cp -r "$$tmp/before" $(GEN); \
	    echo "proto-check: gen/ is stale: run 'make protos' and commit the result" >&2; exit 1; \
	  fi; echo "proto-check: generated code is up to date"

lint: $(STAMP) ## ruff (lint and format check) and mypy.
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: $(STAMP) ## Run every check: proto drift, lint, and the whole test suite.
	$(MAKE) --no-print-directory proto-check
	$(MAKE) --no-print-directory lint
	$(VENV)/bin/pytest

test-fast: $(STAMP) ## Run the test suite only.
	$(VENV)/bin/pytest -x -q

run: $(STAMP) ## Run the three services from .env (embedded Postgres unless DATABASE_URL).
	$(PY) -m devtools.run

demo: $(STAMP) ## Play a scripted match on the whole system, offline.
	$(PY) -m sandbox.demo

bench: $(STAMP) ## Measure the hot paths; writes bench/results.json and docs/benchmarks.md.
	$(PY) -m bench

compose-check: ## Validate docker-compose.yml (needs Debian's docker-compose, no engine).
	docker-compose --env-file .ci/compose.env config -q && echo "compose-check: docker-compose.yml is valid"

clean: ## Remove the virtualenv, caches and the embedded database.
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
