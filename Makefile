# The two commands a new user needs: `make demo` and `make test`. Each installs what is
# missing (Debian packages, the virtualenv, the package) and then runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: demo test lint bench bench-quick nab install uninstall system-deps venv clean

system-deps:
	@scripts/ensure-system-deps.sh

$(STAMP): pyproject.toml | system-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

venv: system-deps $(STAMP)

demo: venv
	$(BIN)/edge-gateway demo

test: venv
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check gateway devices || true
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: venv
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[bench]'
	$(BIN)/python -m bench

bench-quick: venv
	$(BIN)/python -m bench --quick

nab: venv
	$(BIN)/python bench/nab.py

install: venv
	$(BIN)/edge-gateway install-service

uninstall: venv
	$(BIN)/edge-gateway uninstall-service

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
