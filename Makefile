# SPY options platform. The README's two commands are `make demo` and `make test`;
# everything they need is installed here, from pinned versions and lock files.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON      ?= python3
UV_VERSION  := 0.13.9
UV_VENV     := .bin/uv-venv
UV          := $(UV_VENV)/bin/uv
VENV        := .venv
PY          := $(VENV)/bin/python
KUBECONFIG_LOCAL := $(CURDIR)/.local/kubeconfig
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
export UV_PYTHON_DOWNLOADS := never

# Each part of the platform adds what its tests need (Azurite, Chromium, ...) in its
# own mk/<part>.mk by appending targets to TEST_DEPS and DEMO_DEPS.
TEST_DEPS :=
DEMO_DEPS :=
-include mk/*.mk

.PHONY: help venv lock tools lint test test-unit demo demo-down crds cluster cluster-down run bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(UV):
	@echo "[venv] installing uv $(UV_VERSION) into $(UV_VENV)"
	@$(PYTHON) -m venv $(UV_VENV)
	@$(UV_VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	@echo "[venv] syncing $(VENV) from uv.lock"
	@$(UV) sync --locked --quiet --python $(PYTHON)
	@touch $@

venv: $(VENV)/.synced ## create .venv from the lock file

lock: $(UV) ## re-resolve uv.lock after editing pyproject.toml
	$(UV) lock --python $(PYTHON)

tools: ## build the local control plane's Go tools into .bin/ (cached)
	@bash tools/build.sh

lint: venv ## ruff + mypy strict + import-linter layer contracts
	@echo "[lint] ruff"
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check . >/dev/null || { $(VENV)/bin/ruff format --diff . | head -50; exit 1; }
	@echo "[lint] mypy --strict"
	@$(VENV)/bin/mypy operator/spy_operator workloads/analytics/spy_analytics workloads/runtime/spy_runtime devtools/spy_dev
	@echo "[lint] import-linter (layers: pyproject.toml [tool.importlinter])"
	@out=$$($(VENV)/bin/lint-imports --no-cache 2>&1) || { echo "$$out"; exit 1; }; \
		echo "$$out" | grep -E "KEPT|BROKEN|^Contracts:" | sed 's/^/  /'

test: venv tools $(TEST_DEPS) lint ## run every test (lint, unit, integration on the local control plane)
	@$(PY) -m pytest

test-unit: venv ## only the tests that need no control plane
	@$(PY) -m pytest -m "not cluster"

cluster: venv tools ## start the local control plane in the background; kubeconfig in .local/kubeconfig
	@$(PY) -m spy_dev.devcluster up --state-dir .local

cluster-down: venv ## stop the local control plane
	@$(PY) -m spy_dev.devcluster down --state-dir .local

WEBHOOK_PORT ?= 9443

run: venv ## run the operator (and its approval webhook, registered on the local cluster)
	@if [ -z "$$KUBECONFIG" ] || [ "$$KUBECONFIG" = "$(KUBECONFIG_LOCAL)" ]; then \
		$(PY) -m spy_dev.webhook register --state-dir .local --port $(WEBHOOK_PORT) && \
		env $$($(PY) -m spy_dev.webhook env --state-dir .local) KUBECONFIG=$(KUBECONFIG_LOCAL) \
			$(PY) -m spy_operator --webhook-port $(WEBHOOK_PORT) --webhook-host 127.0.0.1; \
	else \
		$(PY) -m spy_operator; \
	fi

demo: venv tools $(DEMO_DEPS) ## bring the platform up locally and show it working
	@$(PY) -m spy_dev.demo up --state-dir .local

demo-down: venv ## stop everything `make demo` started (and the control plane)
	@$(PY) -m spy_dev.demo down --state-dir .local

crds: venv ## regenerate crds/*.yaml (and the chart's copies of them and of deploy/admission/, docs/api.md, crd_defaults.py)
	@$(PY) crds/generate.py
	@cp crds/ibgateways.yaml crds/optionsdetectors.yaml crds/tradingbots.yaml helm/spy-options/crds/
	@rm -f helm/spy-options/files/admission/*.yaml && cp deploy/admission/*.yaml helm/spy-options/files/admission/

bench: venv tools ## run the benchmarks (see docs/benchmarks.md)
	@$(PY) bench/operator_convergence.py

clean: ## remove build outputs (keeps the Go build cache)
	rm -rf .venv .bin .local
