#!/usr/bin/env bash
# The Kubernetes manifests run for real with `podman kube play` (no cluster here), on a Debian
# bookworm machine as root, against this machine's PostgreSQL and Redis and a moto_server S3
# bucket. See docs/deployment.md, "Run for real here: make k8s-test".
#
#   deploy/k8s_smoke.sh [--keep] [--remove-images]        (or: make k8s-test)
#   deploy/k8s_smoke.sh --remove-images --images-only     only that (CI, after a failure)
#
#   1. the images localhost/digits-serve-api:smoke (API pods) and
#      localhost/digits-serve-worker:smoke (the worker pod): reused when both exist
#      (`deploy/smoke.sh --keep` or an earlier run left them), else built by
#      `deploy/smoke.sh --build-only` (podman, base images, both targets; never twice);
#   2. deploy/k8s_smoke.py: `kubectl kustomize deploy/k8s/overlays/scaled`, changed where
#      podman cannot play it as a cluster would (deploy/k8s_play.py, each change printed),
#      played: 2 API pods, 1 worker pod; readiness, predictions, a job published through the
#      bucket and served by the other API pod, a third API pod cold-started; the figures.
#
# Everything it makes (pods, volumes, the podman secret, the database, the Redis db number,
# the moto process, the work folder) is removed on exit. Images: those it built are removed
# unless --keep (or K8S_KEEP=1); --remove-images also removes the smoke images it reused
# (CI: `make deploy-test SMOKE_ARGS=--keep` then `make k8s-test K8S_ARGS=--remove-images`).
set -euo pipefail
cd "$(dirname "$0")/.."

keep=${K8S_KEEP:-0}
remove_images=0
images_only=0
for arg in "$@"; do
  case $arg in
    --keep) keep=1 ;;
    --remove-images) remove_images=1 ;;
    --images-only) images_only=1 ;;
    -h | --help) sed -n '2,/^set -e/{/^set -e/!p}' "$0"; exit 0 ;;
    *) echo "k8s: unknown argument $arg (usage: deploy/k8s_smoke.sh [--keep] [--remove-images] [--images-only])" >&2; exit 2 ;;
  esac
done

say() { printf '\n== k8s %s: %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf '\nk8s: FAILED: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (rootful podman)"
[[ -x .venv/bin/python ]] || die ".venv is missing: run 'make install' first (make k8s-test does)"
command -v kubectl >/dev/null || die "kubectl is not on PATH (it renders deploy/k8s)"

api_image=localhost/digits-serve-api:smoke
worker_image=localhost/digits-serve-worker:smoke
# The images deploy/smoke.sh makes (its names).
smoke_images=(localhost/digits-smoke/python:3.11-bookworm localhost/digits-smoke/nginx:bookworm
  "$api_image" "$worker_image")
work=$(mktemp -d /var/tmp/digits-k8s.XXXXXX)
built=()
started=$(date +%s)

cleanup() {
  local rc=$?
  set +e
  say "cleanup"
  # deploy/k8s_smoke.py removes what it played; this catches an interrupted run.
  for file in "$work"/*.yaml; do
    [[ -f $file ]] && podman kube down "$file" >/dev/null 2>&1
  done
  local remove=()
  if [[ $remove_images == 1 ]]; then
    remove=("${smoke_images[@]}")
  elif [[ $keep != 1 ]] && ((${#built[@]})); then
    remove=("${built[@]}")
  fi
  if ((${#remove[@]})) && command -v podman >/dev/null; then
    podman rmi -f "${remove[@]}" >/dev/null 2>&1
    podman image prune -f >/dev/null 2>&1   # the dangling build stages
    echo "k8s: images removed: ${remove[*]}"
  fi
  rm -rf "$work"
  local took=$(($(date +%s) - started))
  if [[ $rc == 0 ]]; then
    echo "k8s: PASSED in ${took} s"
  else
    echo "k8s: FAILED (exit $rc) after ${took} s" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. the images --------------------------------------------------------------------------
if command -v podman >/dev/null; then
  # shellcheck source=deploy/podman.sh
  source deploy/podman.sh
  podman_conf "$work"
fi
if [[ $images_only == 1 ]]; then
  exit 0
fi
if command -v podman >/dev/null && podman image exists "$api_image" \
  && podman image exists "$worker_image"; then
  say "images $api_image, $worker_image exist: reused (not rebuilt)"
else
  say "no image $api_image or $worker_image: deploy/smoke.sh --build-only"
  for image in "${smoke_images[@]}"; do
    if ! command -v podman >/dev/null || ! podman image exists "$image"; then built+=("$image"); fi
  done
  bash deploy/smoke.sh --build-only || die "deploy/smoke.sh --build-only failed"
  # shellcheck source=deploy/podman.sh
  source deploy/podman.sh
  podman_conf "$work"
fi
podman --version

# --- 2. the manifests played ----------------------------------------------------------------
say "kubectl kustomize deploy/k8s/overlays/scaled | substituted | podman kube play (deploy/k8s_smoke.py)"
.venv/bin/python deploy/k8s_smoke.py --api-image "$api_image" --worker-image "$worker_image" \
  --work "$work" \
  || die "deploy/k8s_smoke.py failed (its last lines above)"
