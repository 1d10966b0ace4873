# One place for the project's commands; README, .ci/run and the Dockerfile use the same ones.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install serve train ship test test-fast lint fmt check bench report clean deploy-test k8s-test

# Where pip takes torch from. The default is the CPU build on any Linux x86_64 machine (PyPI's
# own torch there is the CUDA build, several GB). For an NVIDIA GPU, the CUDA 12.8 build:
#   make install TORCH_INDEX=https://download.pytorch.org/whl/cu128
# An index that cannot be reached only costs pip's retries (a warning): a torch wheel that pip
# finds elsewhere (its own configuration, a local folder) is taken as before.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
# The torch pin, read from pyproject.toml so that it is written in one place.
TORCH_PIN   := $(shell sed -n 's/^ *"\(torch==[^"]*\)".*/\1/p' pyproject.toml)

# The virtual environment, rebuilt when pyproject.toml changes: torch alone from TORCH_INDEX
# (--no-deps: the index is asked for torch only), then the project, whose torch pin it meets.
$(STAMP): pyproject.toml
	@echo "make: installing into $(VENV) ($(TORCH_PIN) from $(TORCH_INDEX)); the first time takes a few minutes"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install --no-deps '$(TORCH_PIN)' --extra-index-url '$(TORCH_INDEX)'
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)
	@echo "make: $(VENV) is ready"

install: $(STAMP)

## Run the service on its embedded defaults (models/, SQLite, local job workers).
serve: $(STAMP)
	$(BIN)/python -m service

## Fit and export the logistic, FNN and CNN families (not the ensemble: add
## `--family ensemble`) with the default recipe as new versions in var/models/ (served beside
## the shipped models/, never by default until promoted), numbered after the versions in both
## folders.
train: $(STAMP)
	@echo "make: fitting logistic, fnn and cnn with the default recipe into var/models/ (a few minutes)"
	$(BIN)/python -m training --recipe default

## The same, into the shipped models/ (read-only otherwise): new shipped versions for a release.
ship: $(STAMP)
	$(BIN)/python -m training --recipe default --ship

## Every test: unit, service, and integration tests on the local PostgreSQL/Redis. About 11
## minutes on 2 CPUs; -v names each test as it starts (no silent minutes), and the 15 slowest
## are listed at the end.
test: $(STAMP)
	@echo "make: running every test (about 11 minutes on 2 CPUs; each test is named as it starts)"
	$(BIN)/python -m pytest -v --durations=15

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

## The two images built and the compose stack run for real with podman (root, Debian bookworm; no
## Docker engine or container registry needed): deploy/smoke.sh, see docs/deployment.md.
deploy-test: $(STAMP)
	bash deploy/smoke.sh $(SMOKE_ARGS)

## The rendered manifests (deploy/k8s/overlays/scaled) played for real with `podman kube play`:
## 2 API pods, a worker pod, a job published through an S3 bucket (moto_server); reuses the
## images deploy-test built (SMOKE_ARGS=--keep), builds them when missing. docs/deployment.md.
k8s-test: $(STAMP)
	bash deploy/k8s_smoke.sh $(K8S_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/serve_bench.py

report: $(STAMP)
	$(BIN)/python -m training.report --seeds 10 --ensemble-seeds 5 --jobs 2

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
