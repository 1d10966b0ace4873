# One place for the project's commands; README, .ci/run and the Dockerfile use the same ones.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install serve train test test-fast lint fmt check bench report clean

# The virtual environment, rebuilt when pyproject.toml changes. torch==2.13.0 is the CPU build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Run the service on its embedded defaults (models/, SQLite, local job workers).
serve: $(STAMP)
	$(BIN)/python -m service

## Fit and export every family with the default recipe as new versions in var/models/
## (served beside the shipped models/, never by default until pinned).
train: $(STAMP)
	$(BIN)/python -m training --recipe default --models-dir var/models --number-after models

## Every test: unit, service, and integration tests on the local PostgreSQL/Redis.
test: $(STAMP)
	$(BIN)/python -m pytest

## Tests that need no external service.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not integration"

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	bash deploy/check.sh

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: lint test

bench: $(STAMP)
	$(BIN)/python bench/serve_bench.py

report: $(STAMP)
	$(BIN)/python -m training.report --seeds 5

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
