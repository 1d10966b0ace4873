#!/usr/bin/env bash
# Offline checks of the deployment files (no Docker engine needed):
#   1. hadolint on the Dockerfile;
#   2. docker-compose.yml against the Compose Specification JSON schema (the copy that ships
#      inside check-jsonschema: no network);
#   3. the project-specific compose checks of deploy/check_compose.py.
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
echo "deploy checks passed"
