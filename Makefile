# mediagate: `make run` sets up and serves; `make test` runs every suite.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
HOME_DIR ?= ./data
HOST    ?= 127.0.0.1
PORT    ?= 8080

.PHONY: run install test lint typecheck check bench clean

$(BIN)/mediagate: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,moderation,video]'
	touch $@

install: $(BIN)/mediagate

run: install
	@$(BIN)/mediagate --home $(HOME_DIR) init --demo
	@$(BIN)/mediagate --home $(HOME_DIR) serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -p no:cacheprovider

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/small.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/tasks.py
	$(BIN)/python bench/taskqueue.py
	$(BIN)/python bench/moderation.py
	$(BIN)/python bench/tus.py
	$(BIN)/python bench/catalog.py
	$(BIN)/python bench/quotas.py
	$(BIN)/python bench/v1.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
