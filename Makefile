# Two entry points on a fresh machine: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test interop bench report contracts models

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# solc-js, for the test that the committed contract artifacts match their sources.
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --silent --no-audit --no-fund && touch $@; \
	else echo "npm not found: the contract-artifact check will be skipped"; fi

demo: $(STAMP)
	$(BIN)/python examples/quickstart_devnet.py

test: $(STAMP) node_modules/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

# The official clients (0.7.4 and the latest release, each in its own venv under .interop/) against
# `devnet up --payments-chain base-sepolia` / `base`; needs PyPI. Writes .interop/matrix.md.
interop: $(STAMP)
	$(BIN)/python -m pytest -m interop tests/interop -p no:randomly -v
	@cat .interop/matrix.md

bench: $(STAMP)
	$(BIN)/python -m bench

# Every benchmark of DESIGN.md's targets as one table (median, same-run baseline, ratio, target, met).
report: $(STAMP)
	$(BIN)/python -m bench.report

contracts: node_modules/.installed
	$(BIN)/python scripts/compile_contracts.py
	$(BIN)/python -m opengradient.devnet.zkml.build

models: $(STAMP)
	$(BIN)/python -m opengradient.devnet.models.build
