# syntax=docker/dockerfile:1
# digits-serve: the API (`python -m service`) and the Celery worker share this image.
#
#   CPU (default):  docker build -t digits-serve .
#   CUDA:           docker build -t digits-serve:cuda \
#                     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
#
# The CUDA wheels bundle the CUDA runtime, so the same slim base serves both; the host only
# needs the NVIDIA driver and container toolkit (see docs/deployment.md).

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: a virtual environment holding torch and the project --------------------------
FROM ${PYTHON_IMAGE} AS build

# Where torch comes from: the PyTorch CPU wheel index by default, a cuXXX index for CUDA.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# torch first, in its own layer: it is by far the largest and changes least often.
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"
# The wheel carries C++ test binaries (torch/test, torch/bin but torch_shm_manager) and the
# C++ headers (torch/include): ~190 MB of the image (measured: deploy/smoke.sh) that nothing
# here uses (no torch.compile, no C++ extensions). Dropped in the build stage, so the
# runtime stage's copy of the venv never holds them.
RUN torch_dir="$(python -c 'import os, torch; print(os.path.dirname(torch.__file__))')" \
    && rm -rf "${torch_dir}/test" "${torch_dir}/include" \
    && find "${torch_dir}/bin" -mindepth 1 -maxdepth 1 ! -name torch_shm_manager -exec rm -rf {} + \
    && python -c "import torch; torch.ones(2) @ torch.ones(2)"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY training ./training
COPY service ./service
# torch==2.13.0 is already satisfied (the +cpu/+cuXXX local label matches), so pip keeps it.
RUN pip install --no-cache-dir . && python -c "import service.http.app, training.export"

# --- runtime: the venv, the shipped models, a non-root user --------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG APP_UID=10001
RUN groupadd --system --gid "${APP_UID}" app \
    && useradd --system --uid "${APP_UID}" --gid app --home-dir /app --no-create-home app \
    && mkdir -p /app/var /models /versions \
    && chown -R app:app /app /models /versions

COPY --from=build /opt/venv /opt/venv
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
EXPOSE 8000
VOLUME ["/versions"]

HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=4)"]

# The same start command as the README; the worker service overrides it (docker-compose.yml).
CMD ["python", "-m", "service", "--host", "0.0.0.0", "--port", "8000"]
