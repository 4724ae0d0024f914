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

.PHONY: help setup protos proto-check lint test test-fast run demo bench compose-check k8s-check alerts alerts-check clean

help: ## List the commands.
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

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

# Kubernetes checks: their own virtualenv, so their dependencies never meet the project's pins.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
K8S_VERSION := 1.32
KUBECTL ?= kubectl
# checkov checks skipped, each for a reason:
#   CKV_K8S_35 (secrets as files, not environment variables): the services read their settings
#     from the environment only (pydantic-settings), secrets included.
#   CKV_K8S_43 (image by digest): the image is the operator's own build; pin its digest in
#     your overlay (`images: - name: faceit-voice, digest: sha256:...`).
CHECKOV_SKIP := CKV_K8S_35,CKV_K8S_43

$(TOOLS_STAMP):
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet kubernetes-validate==1.37.0 checkov==3.3.30
	@touch $(TOOLS_STAMP)

# kubernetes-validate has no schema for the custom resources (CloudNativePG's Cluster, the
# Prometheus Operator's PodMonitor and PrometheusRule): it says so in a WARN line and goes on
# (its default for a missing schema); every other kind fails on error. The PrometheusRule's
# rules are checked by promtool instead (make alerts-check).
k8s-check: $(TOOLS_STAMP) ## Build deploy/kubernetes (base, example overlay); validate and lint it.
	@out=$$(mktemp -d); trap 'rm -rf "$$out"' EXIT; \
	  $(KUBECTL) kustomize deploy/kubernetes/base > "$$out/base.yaml"; \
	  $(KUBECTL) kustomize deploy/kubernetes/overlays/example > "$$out/example.yaml"; \
	  $(TOOLS)/bin/kubernetes-validate --strict --quiet -k $(K8S_VERSION) "$$out/base.yaml" "$$out/example.yaml"; \
	  BC_SKIP_MAPPING=TRUE $(TOOLS)/bin/checkov -d "$$out" --framework kubernetes --quiet --compact \
	    --skip-download --skip-check $(CHECKOV_SKIP); \
	  echo "k8s-check: deploy/kubernetes builds, validates and passes checkov"

# Alert rules: deploy/kubernetes/monitoring/alerts.yaml is the source; the PrometheusRule the
# cluster gets is made from it (its comments left out, its rules indented under `spec:`).
MONITORING := deploy/kubernetes/monitoring
PROMTOOL ?= promtool
define PROMETHEUS_RULE
{ printf '%s\n' '# Made from alerts.yaml by `make alerts`: edit that file, not this one.' \
    'apiVersion: monitoring.coreos.com/v1' 'kind: PrometheusRule' 'metadata:' \
    '  name: faceit-voice' '  namespace: faceit-voice' '  labels:' \
    '    app.kubernetes.io/part-of: faceit-voice' 'spec:'; \
  grep -v '^#' $(MONITORING)/alerts.yaml | sed 's/^./  &/'; }
endef

alerts: ## Write deploy/kubernetes/monitoring/prometheus-rule.yaml from alerts.yaml.
	@$(PROMETHEUS_RULE) > $(MONITORING)/prometheus-rule.yaml
	@echo "alerts: wrote $(MONITORING)/prometheus-rule.yaml"

alerts-check: ## promtool check and unit tests of the alert rules; the PrometheusRule is up to date.
	$(PROMTOOL) check rules $(MONITORING)/alerts.yaml
	cd $(MONITORING) && $(PROMTOOL) test rules alerts-test.yaml
	@if ! diff <($(PROMETHEUS_RULE)) $(MONITORING)/prometheus-rule.yaml >/dev/null; then \
	  echo "alerts-check: $(MONITORING)/prometheus-rule.yaml is stale: run 'make alerts'" >&2; \
	  exit 1; fi; echo "alerts-check: the rules pass promtool and prometheus-rule.yaml is up to date"

clean: ## Remove the virtualenv, caches and the embedded database.
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
