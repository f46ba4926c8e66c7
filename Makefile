# The two commands: `make run` (job service + workers + dashboard on SQLite) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install run test lint typecheck unit bench-quick clean

$(STAMP): pyproject.toml
	@echo "Setting up .venv and installing Conveyor with its dependencies (the first time takes a few minutes)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)
	@echo "Installed."

install: $(STAMP)

run: $(STAMP)
	$(BIN)/conveyor serve --app examples.app:app --host $(HOST) --port $(PORT) --workers 1 --concurrency 4 --resources gpu=1 --no-auth

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck
	$(BIN)/pytest -n 3 --dist loadgroup -q -rs

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
