# Two commands: `make demo` and `make test`. Both create the virtualenv (Python >= 3.12) and install
# the package with every extra first. `make test-fast` is the quick loop (unit + integration).
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= $(shell command -v pyenv >/dev/null 2>&1 && pyenv which python3 2>/dev/null || command -v python3.12 || command -v python3)
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: demo test test-fast bench bench-peers lint type check venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "Python >= 3.12 is required (fastapi-startkit needs it); found " + sys.version.split()[0] + ". Install 3.12 (pyenv install 3.12) or run: make PYTHON=/path/to/python3.12 ...")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/python -m benchmarks.demo $(ARGS)

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(ARGS)

test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest tests/unit tests/integration -m "not fault" $(ARGS)

bench: $(STAMP)
	$(VENV)/bin/python -m benchmarks.bench $(ARGS)

PEERS_VENV := benchmarks/.venv-peers
$(PEERS_VENV)/.installed: benchmarks/requirements-peers.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet -r benchmarks/requirements-peers.txt
	@touch $@

bench-peers: $(STAMP) $(PEERS_VENV)/.installed
	$(VENV)/bin/python -m benchmarks.bench peers $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

type: $(STAMP)
	$(VENV)/bin/mypy

check: lint type test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .tox
