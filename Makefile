# Build and run the ODR platform. GNU make.
#
#   make run        set up (once) and serve on http://127.0.0.1:$(PORT) (default 8000)
#   make test       set up, lint, type-check and run the tests (PYTEST_ARGS="-k foo -x")
#   make lint       ruff and mypy only (also: make ruff, make mypy)
#   make messages   extract translatable strings and update the kk/ru/en catalogues
#
# Every step is guarded by a stamp, so repeated runs do nothing when nothing changed.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.installed

NPM ?= npm
FRONTEND := frontend
NODE_STAMP := $(FRONTEND)/node_modules/.installed
# One bundle per page feature: frontend/src/X.js -> frontend/static/X.js, built by
# frontend/build.mjs (the Dockerfile runs the same script).
BUNDLES := $(patsubst $(FRONTEND)/src/%.js,$(FRONTEND)/static/%.js,$(wildcard $(FRONTEND)/src/*.js))
FRONTEND_SRC := $(shell find $(FRONTEND)/src -type f 2>/dev/null)

LINT_PATHS := odr rooms documents tests
PYTEST_ARGS ?=

LANGUAGES := kk ru en
LOCALE_DIR ?= odr/locale
POT := $(LOCALE_DIR)/messages.pot

.PHONY: help venv frontend run test lint ruff mypy pytest run-deps system-deps messages clean distclean

help:
	@echo "make run          serve on http://127.0.0.1:$${PORT:-8000} (demo accounts printed on first start)"
	@echo "make test         lint, type-check and run the tests (PYTEST_ARGS=... passed to pytest)"
	@echo "make lint         ruff + mypy"
	@echo "make frontend     build $(BUNDLES)"
	@echo "make messages     update the gettext catalogues in $(LOCALE_DIR)"
	@echo "make clean        remove build outputs and caches (make distclean: also .venv, node_modules)"

# --- Python environment -----------------------------------------------------------------------

venv: $(VENV_STAMP)

$(BIN)/python:
	@echo "Creating $(VENV) with $$($(PYTHON) --version)"
	@$(PYTHON) -m venv $(VENV)

# Reinstalled only when pyproject.toml changes (the package itself is installed editable).
$(VENV_STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing Python dependencies into $(VENV)"
	@PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

# --- Browser bundle ---------------------------------------------------------------------------

frontend: $(BUNDLES)

$(NODE_STAMP): $(FRONTEND)/package-lock.json $(FRONTEND)/package.json
	@echo "Installing frontend packages (npm ci)"
	@cd $(FRONTEND) && $(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

$(BUNDLES) &: $(FRONTEND_SRC) $(FRONTEND)/build.mjs $(NODE_STAMP)
	@cd $(FRONTEND) && node build.mjs

# --- Run --------------------------------------------------------------------------------------

# PORT, HOST and ODR_* settings come from the environment.
run: venv frontend run-deps
	$(BIN)/odr run

# --- Checks and tests -------------------------------------------------------------------------

lint: ruff mypy

ruff: venv
	$(BIN)/ruff check $(LINT_PATHS)

mypy: venv
	$(BIN)/mypy

pytest: venv frontend system-deps
	$(BIN)/pytest $(PYTEST_ARGS)

# Lint and types first: any failure stops here and fails `make test`. Then the whole suite on
# SQLite, and once more on the machine's PostgreSQL when it answers (tests/databases.py: each
# test and each live server gets a database of its own; ODR_TEST_POSTGRES_URL names another
# server).
test: venv frontend system-deps
	@$(MAKE) lint
	$(BIN)/pytest $(PYTEST_ARGS)
	@if $(BIN)/python -c 'import asyncio, tests.databases as d; asyncio.run(d.admin_command("select 1"))' 2>/dev/null; then \
		echo "== the suite again, on PostgreSQL"; \
		ODR_TEST_DATABASE=postgres $(BIN)/pytest $(PYTEST_ARGS); \
	else echo "PostgreSQL is not reachable: the PostgreSQL pass is skipped"; fi

# System packages, installed with apt when something is missing and we are root (always tried
# when CI=true); outside CI a failure only warns. `make run` needs the DejaVu fonts (Kazakh
# letters in the agreement PDF); the tests also need Chromium for the browser tests and poppler's
# pdfsig and NSS's certutil to check signatures independently (they skip when these are missing).
# iproute2 (ip, tc) builds the weak link of tests/rooms/test_weak_link.py.
RUN_PACKAGES := fonts-dejavu-core
SYSTEM_PACKAGES := $(RUN_PACKAGES) chromium poppler-utils libnss3-tools iproute2
HAVE_FONTS := [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]
HAVE_TEST_TOOLS := $(HAVE_FONTS) && command -v chromium && command -v pdfsig && command -v certutil && command -v tc

# $(call apt_install,CHECK,PACKAGES): install PACKAGES unless the shell test CHECK passes.
define apt_install
	@if { $(1); } >/dev/null 2>&1; then exit 0; fi; \
	ci="$${CI:-}"; \
	if [ "$$ci" != true ] && [ "$$(id -u)" != 0 ]; then \
		echo "Note: some of $(2) are missing; what needs them will skip or fail." >&2; \
		exit 0; \
	fi; \
	if command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -qq </dev/null \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$(2) </dev/null >/dev/null; then \
		echo "Installed $(2)"; \
	elif [ "$$ci" = true ]; then \
		echo "Could not install $(2) with apt-get" >&2; exit 1; \
	else \
		echo "Note: could not install $(2); what needs them will skip or fail." >&2; \
	fi
endef

run-deps:
	$(call apt_install,$(HAVE_FONTS),$(RUN_PACKAGES))

system-deps:
	$(call apt_install,$(HAVE_TEST_TOOLS),$(SYSTEM_PACKAGES))

# --- Translations -----------------------------------------------------------------------------

# Existing translations are kept: `update` merges new strings into each catalogue.
messages: venv
	@mkdir -p $(LOCALE_DIR)
	$(BIN)/pybabel --quiet extract -F babel.cfg -k N_ -k _ -k gettext -k ngettext:1,2 \
		--ignore-dirs=".* ._ node_modules var __pycache__" \
		--project=odr --copyright-holder="ODR contributors" -o $(POT) .
	@for lang in $(LANGUAGES); do \
		if [ ! -f $(LOCALE_DIR)/$$lang/LC_MESSAGES/messages.po ]; then \
			$(BIN)/pybabel --quiet init -i $(POT) -d $(LOCALE_DIR) -D messages -l $$lang; \
		fi; \
	done
	$(BIN)/pybabel --quiet update -i $(POT) -d $(LOCALE_DIR) -D messages --no-fuzzy-matching

# --- Cleaning ---------------------------------------------------------------------------------

# The data folder (var/, or ODR_DATA_DIR) is never removed by make.
clean:
	rm -f $(BUNDLES) $(addsuffix .map,$(BUNDLES))
	rm -rf .mypy_cache .ruff_cache .pytest_cache build dist
	find . -path ./$(VENV) -prune -o -path ./$(FRONTEND)/node_modules -prune \
		-o -type d -name __pycache__ -print0 | xargs -0 -r rm -rf

distclean: clean
	rm -rf $(VENV) $(FRONTEND)/node_modules *.egg-info
