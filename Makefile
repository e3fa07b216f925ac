# MyData: `make demo` runs the sandbox, `make test` runs every check. Both set themselves up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
HOST ?= 127.0.0.1
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
SYSTEM_STAMP := $(VENV)/.system-packages
# WeasyPrint's libraries and CJK fonts (PDFs), Chromium and its driver (browser tests).
SYSTEM_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk chromium chromium-driver
# The code is imported from this checkout (also from a git worktree sharing the virtualenv).
export PYTHONPATH := $(CURDIR)
PO := $(wildcard mydata/translations/*/LC_MESSAGES/messages.po)
MO := $(PO:.po=.mo)

.PHONY: help setup demo test coverage lint fmt translations extract-messages bench screenshots clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

setup: $(STAMP) $(SYSTEM_STAMP) $(MO) ## Install everything: system packages, virtualenv, Python packages, translations

$(SYSTEM_STAMP):
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@mkdir -p $(VENV) && touch $@

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

%.mo: %.po $(STAMP)
	$(BIN)/pybabel compile --use-fuzzy -i $< -o $@ >/dev/null

translations: $(MO) ## Compile the translations

extract-messages: $(STAMP) ## Extract translatable strings and update the .po files
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext -o mydata/translations/messages.pot -w 100 --no-location --sort-output --project=MyData .
	$(BIN)/pybabel update -i mydata/translations/messages.pot -d mydata/translations --no-fuzzy-matching -w 100

demo: setup ## Migrate, seed and serve the sandbox on http://$(HOST):$(PORT) (SQLite; PORT= to change)
	MYDATA_CONFIG=$${MYDATA_CONFIG:-config/sandbox.toml} $(BIN)/mydata demo --host $(HOST) --port $(PORT)

test: setup lint ## Run the lint checks and the whole test suite (and name its 15 slowest tests)
	$(BIN)/pytest --durations=15 $(PYTEST_ARGS)

coverage: setup ## Run the whole test suite with branch coverage (about 40 % slower than `make test`)
	$(BIN)/pytest --cov --cov-report=term:skip-covered $(PYTEST_ARGS)

lint: setup ## ruff, the layering contracts (import-linter) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo
	$(BIN)/mypy

fmt: setup ## Format the code and fix what ruff can fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The benches, in the order `make bench` runs them (bench/report.py prints them against their targets).
BENCHES := oidc_flow transaction fetch_parallel ledger pdf eid_revocation malformed_input faults
REFERENCE := bench/reference/oidc-provider
# The WSGI server of the benches that serve the platform (gunicorn, granian or uwsgi).
SERVER ?=

$(REFERENCE)/node_modules/.package-lock.json: $(REFERENCE)/package-lock.json
	@command -v npm >/dev/null && command -v redis-server >/dev/null || \
	  { echo "make bench needs Node.js 20+ with npm, and redis-server, for the reference ($(REFERENCE))"; exit 1; }
	cd $(REFERENCE) && npm ci --no-audit --no-fund

bench: setup $(REFERENCE)/node_modules/.package-lock.json ## Run every benchmark, then one table against the targets (SERVER= to choose)
	@failed=""; for b in $(BENCHES); do \
	  args=""; \
	  case $$b in oidc_flow) args="--reference";; esac; \
	  case $$b in oidc_flow|transaction) [ -n "$(SERVER)" ] && args="$$args --server $(SERVER)";; esac; \
	  echo "== bench/$$b.py $$args"; \
	  $(BIN)/python bench/$$b.py $$args || failed="$$failed $$b"; \
	done; \
	echo; $(BIN)/python bench/report.py $(BENCHES); \
	if [ -n "$$failed" ]; then echo "exited non-zero:$$failed"; exit 1; fi

screenshots: setup ## Screenshot the portal (both languages, desktop and 360 px phone) into docs/screenshots/
	$(BIN)/python docs/screenshots/make.py

clean: ## Remove the virtualenv and the instance folder
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
