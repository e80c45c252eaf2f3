# Two entry points on a fresh machine: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The SDK's base dependencies as wheels (and setuptools to build it): the packaging test installs
# the freshly built wheel from here into a new venv, with no network.
WHEELHOUSE := $(VENV)/wheelhouse

.PHONY: demo test docs compat interop bench report contracts models

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

$(WHEELHOUSE)/.ready: pyproject.toml $(STAMP)
	rm -rf $(WHEELHOUSE)
	$(BIN)/python -m pip wheel -q -w $(WHEELHOUSE) . 'setuptools>=77'
	rm -f $(WHEELHOUSE)/opengradient-*.whl
	touch $@

# solc-js, for the test that the committed contract artifacts match their sources.
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --silent --no-audit --no-fund && touch $@; \
	else echo "npm not found: the contract-artifact check will be skipped"; fi

demo: $(STAMP)
	$(BIN)/python examples/quickstart_devnet.py

test: $(STAMP) $(WHEELHOUSE)/.ready node_modules/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/mkdocs build --strict --quiet
	$(BIN)/python scripts/compat.py
	$(BIN)/python -m pytest

# The API reference site, from the docstrings, into .venv/site (warnings are errors).
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

# The adapters' tests against the lowest and newest supported langchain-core and openai-agents.
compat: $(STAMP)
	$(BIN)/python scripts/compat.py

# The official clients (0.7.4 and the latest release, each in its own venv under .interop/) against
# `devnet up --payments-chain base-sepolia` / `base`; needs PyPI. Writes .interop/matrix.md.
interop: $(STAMP)
	$(BIN)/python -m pytest -m interop tests/interop -p no:randomly -v
	@cat .interop/matrix.md

bench: $(STAMP)
	$(BIN)/python -m bench

# Every benchmark against its performance target as one table (median, same-run baseline, ratio, target, met).
report: $(STAMP)
	$(BIN)/python -m bench.report

contracts: node_modules/.installed
	$(BIN)/python scripts/compile_contracts.py
	$(BIN)/python -m opengradient.devnet.services.zkml.build

models: $(STAMP)
	$(BIN)/python -m opengradient.devnet.services.models.build
