# syntax=docker/dockerfile:1
# digits-serve: two images from one Dockerfile (issue 24).
#
#   api     `python -m service`: FastAPI + ONNX Runtime, no torch (`digits-serve[api]`).
#           The last stage, so the default: `docker build -t digits-serve .` builds it.
#   worker  the Celery worker: torch (CPU by default) + the API's packages
#           (`digits-serve[all]`); it also serves, and runs local /train jobs.
#
#   docker build --target api    -t digits-serve-api .
#   docker build --target worker -t digits-serve-worker .
#   CUDA worker:  docker build --target worker -t digits-serve-worker:cuda \
#                   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
#
# Both start from one stage (`deps`: a venv holding the API's dependencies, read from
# pyproject.toml), so the second build reuses it. The CUDA wheels bundle the CUDA runtime,
# so the same slim base serves both; the host only needs the NVIDIA driver and container
# toolkit (see docs/deployment.md).

ARG PYTHON_IMAGE=python:3.11-slim

# --- deps: a venv with the API's dependencies (both images start from it) ----------------
FROM ${PYTHON_IMAGE} AS deps

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# The requirement lists of pyproject.toml, written out so that this layer (and the torch
# layer of the worker) is rebuilt when pyproject.toml changes, not when the code does:
# requirements-api.txt = the base dependencies + the `api` extra; requirements-train.txt =
# the `train` extra.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; x = p['optional-dependencies']; open('requirements-api.txt', 'w').write('\n'.join(p['dependencies'] + x['api']) + '\n'); open('requirements-train.txt', 'w').write('\n'.join(x['train']) + '\n')" \
    && pip install --no-cache-dir -r requirements-api.txt

# --- api-build: the project, no torch; pip, setuptools and wheel removed ------------------
FROM deps AS api-build
COPY README.md ./
COPY training ./training
COPY service ./service
# The dependencies are already satisfied (`.[api]` = the project + requirements-api.txt):
# pip builds and installs the project alone. Then it checks that torch is absent and the
# serving and Celery-sender modules import, and removes itself: nothing in the image
# installs packages (~20 MB).
RUN pip install --no-cache-dir . -r requirements-api.txt \
    && python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is not None)" \
    && python -c "import service.http.app, service.jobs.celery_app, training.curves" \
    && pip uninstall --yes pip setuptools wheel \
    && rm -f /opt/venv/bin/Activate.ps1

# --- worker-build: torch, the training packages, the project ------------------------------
FROM deps AS worker-build

# Where torch comes from: the PyTorch CPU wheel index by default, a cuXXX index for CUDA.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0

# torch in its own layer: it is by far the largest and changes least often.
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"
# The wheel carries C++ test binaries (torch/test, torch/bin but torch_shm_manager) and the
# C++ headers (torch/include): ~190 MB of the image (measured: deploy/smoke.sh) that nothing
# here uses (no torch.compile, no C++ extensions). Dropped in the build stage, so the
# worker stage's copy of the venv never holds them.
RUN torch_dir="$(python -c 'import os, torch; print(os.path.dirname(torch.__file__))')" \
    && rm -rf "${torch_dir}/test" "${torch_dir}/include" \
    && find "${torch_dir}/bin" -mindepth 1 -maxdepth 1 ! -name torch_shm_manager -exec rm -rf {} + \
    && python -c "import torch; torch.ones(2) @ torch.ones(2)"
# torch==2.13.0 is already satisfied (the +cpu/+cuXXX local label matches), so pip keeps it.
RUN pip install --no-cache-dir -r requirements-train.txt

COPY README.md ./
COPY training ./training
COPY service ./service
RUN pip install --no-cache-dir . -r requirements-api.txt -r requirements-train.txt \
    && python -c "import service.http.app, service.jobs.celery_app, training.export"

# --- runtime: what both images share: the user, the shipped models, the environment -------
FROM ${PYTHON_IMAGE} AS runtime

ARG APP_UID=10001
RUN groupadd --system --gid "${APP_UID}" app \
    && useradd --system --uid "${APP_UID}" --gid app --home-dir /app --no-create-home app \
    && mkdir -p /app/var /models /versions \
    && chown -R app:app /app /models /versions

# The shipped models, baked in and only read; versions made at run time (jobs) and default
# pins go to DIGITS_VERSIONS_DIR (/versions: a volume, shared by replicas under compose).
COPY models/ /models/

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DIGITS_MODELS_DIR=/models \
    DIGITS_VERSIONS_DIR=/versions \
    DIGITS_HOST=0.0.0.0 \
    DIGITS_PORT=8000

WORKDIR /app
USER ${APP_UID}:${APP_UID}
VOLUME ["/versions"]

# --- worker: the Celery worker (torch) ------------------------------------------------------
FROM runtime AS worker

COPY --from=worker-build /opt/venv /opt/venv

# Compose's health check of the worker: it answers a ping through the broker.
HEALTHCHECK --interval=30s --timeout=15s --start-period=30s --retries=3 \
    CMD ["sh", "-c", "celery -A service.jobs.celery_app inspect ping --destination celery@$HOSTNAME --timeout 5"]

# The command docker-compose.yml and the Kubernetes worker Deployment run.
CMD ["celery", "-A", "service.jobs.celery_app", "worker", "--concurrency=1", "--loglevel=info"]

# --- api: the serving process, no torch (the default target) --------------------------------
FROM runtime AS api

COPY --from=api-build /opt/venv /opt/venv

EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=4)"]

# The same start command as the README and compose's `api` service.
CMD ["python", "-m", "service", "--host", "0.0.0.0", "--port", "8000"]
