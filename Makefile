# The front door. Every target does its own set-up (a project-local virtual environment
# under .local/venv with the pinned requirements) and fails loudly.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .local/venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)
# The lint tools whose dependencies clash with the application's (Checkov) live apart.
LINT_VENV := .local/lint-venv
LINT_STAMP := $(LINT_VENV)/.installed-$(shell sha1sum requirements-lint.txt | cut -c1-12)
PYTEST_ARGS ?=
RUN_ARGS ?=

.PHONY: help venv lint-venv run run-cluster test test-unit test-integration test-e2e proto proto-check lint \
	lint-release pin-image bench lock lock-lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-input -r requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP) ## create .local/venv with the pinned requirements (first run only)
	@# the checkout and the generated contracts are importable from the venv wherever it lives
	@printf '%s\n%s\n' "$(CURDIR)" "$(CURDIR)/gen/python" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/retail-platform.pth"

$(LINT_STAMP): requirements-lint.txt
	@test -x $(LINT_VENV)/bin/python || $(PYTHON) -m venv $(LINT_VENV)
	@# --no-deps: exactly the pinned, complete set; pip check then proves it consistent.
	$(LINT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-input --no-deps -r requirements-lint.txt
	$(LINT_VENV)/bin/python -m pip check --disable-pip-version-check >/dev/null
	@rm -f $(LINT_VENV)/.installed-*
	@touch $@

lint-venv: $(LINT_STAMP) ## create .local/lint-venv with the pinned lint tools (Checkov; first run only)

run: venv ## start PostgreSQL, NATS, every service and the gateway with demo data
	$(PY) -m devstack run $(RUN_ARGS)

run-cluster: venv ## the production topology: 3-node NATS cluster, two of every service and gateway, balancers
	$(PY) -m devstack run --cluster --state-dir .local/cluster $(RUN_ARGS)

test: venv ## unit, integration and end-to-end tests against private PostgreSQL and NATS
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: venv
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: venv
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: venv
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

proto: venv ## regenerate Python code and type stubs from proto/ into gen/python
	$(PY) -m tools.protogen generate

proto-check: venv ## fail when gen/python is not what `make proto` would produce
	$(PY) -m tools.protogen check

lint: venv lint-venv proto-check ## ruff, mypy, buf lint + breaking, kustomize render + schema validation, Checkov
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/buf lint
	$(PY) -m tools.protogen breaking
	$(PY) -m tools.k8s_validate
	$(PY) -m tools.k8s_scan

lint-release: lint ## the release's gate: lint, and Checkov without the until-release exceptions (digests)
	$(PY) -m tools.k8s_scan --release

pin-image: venv ## pin an image of overlays/prod to its digest: NAME=retail-platform DIGEST=sha256:… (or BUILDX_METADATA=file)
	$(PY) -m tools.pin_image --overlay $(or $(OVERLAY),prod) $(NAME) \
	  $(if $(BUILDX_METADATA),--buildx-metadata $(BUILDX_METADATA),--digest $(DIGEST))

bench: venv ## benchmarks: ratios against raw baselines measured in the same run
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } \
	  || { echo "bench needs wrk: install it (e.g. apt-get install wrk)"; exit 1; }
	$(PY) -m bench

lock: ## re-resolve requirements.in into the pinned requirements.txt
	rm -rf .local/lock-venv && $(PYTHON) -m venv .local/lock-venv
	.local/lock-venv/bin/pip install --quiet -r requirements.in
	{ echo '# Pinned, complete dependency set (generated from requirements.in by `make lock`).'; \
	  .local/lock-venv/bin/pip freeze --all --exclude-editable | grep -v '^pip=='; } > requirements.txt
	rm -rf .local/lock-venv

lock-lint: ## re-resolve requirements-lint.in into the pinned requirements-lint.txt
	rm -rf .local/lock-lint-venv && $(PYTHON) -m venv .local/lock-lint-venv
	.local/lock-lint-venv/bin/pip install --quiet -r requirements-lint.in
	{ echo '# Pinned, complete set of the lint tools (generated from requirements-lint.in by `make lock-lint`);'; \
	  echo '# installed with --no-deps into .local/lint-venv by `make lint-venv`.'; \
	  .local/lock-lint-venv/bin/pip freeze --all --exclude-editable | grep -v '^pip=='; } > requirements-lint.txt
	rm -rf .local/lock-lint-venv

clean: ## remove the local stack's state and the virtual environment
	rm -rf .local
