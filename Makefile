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

# Scores the `auto` detector on the Numenta Anomaly Benchmark through `edge-gateway detect`
# (dev split and holdout with the threshold chosen on dev); see docs/detection.md.
nab: venv
	$(BIN)/python bench/nab.py --config configs/nab.toml --sensor nab --cv --bootstrap 2000

# As root: a virtualenv under /opt/edge-gateway, the unit, /etc/edge-gateway (stdlib only, so
# it needs no .venv here). PURGE=1 also removes config and state on uninstall.
install:
	$(PYTHON) gateway/service/install.py install

uninstall:
	$(PYTHON) gateway/service/install.py uninstall $(if $(PURGE),--purge)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
