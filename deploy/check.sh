#!/usr/bin/env bash
# Offline checks of the deployment files (no Docker engine needed):
#   1. hadolint on the Dockerfile;
#   2. docker-compose.yml against the Compose Specification JSON schema (the copy that ships
#      inside check-jsonschema: no network);
#   3. the project-specific compose checks of deploy/check_compose.py;
#   4. the Kubernetes manifests (deploy/k8s): rendered with `kubectl kustomize`, validated
#      strictly against the Kubernetes schemas (kubernetes-validate, bundled: no network),
#      and the project's checks (deploy/check_k8s.py); skipped, saying so, without kubectl.
# Usage: deploy/check.sh   (from anywhere; uses .venv/bin when present, else PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=".venv/bin"
[[ -x "$bin/python" ]] || bin="$(dirname "$(command -v python)")"

echo "== hadolint Dockerfile"
"$bin/hadolint" Dockerfile
echo "== compose-spec schema: docker-compose.yml"
"$bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml
echo "== project checks: docker-compose.yml"
"$bin/python" deploy/check_compose.py docker-compose.yml
if command -v kubectl >/dev/null; then
  echo "== kubernetes: deploy/k8s (kubectl kustomize + kubernetes-validate)"
  "$bin/python" deploy/check_k8s.py
else
  echo "== kubernetes: SKIPPED, kubectl is not on PATH (it renders deploy/k8s)"
fi
echo "deploy checks passed"
