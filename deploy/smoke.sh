#!/usr/bin/env bash
# The Dockerfile and the compose stack built and run for real with podman, on a Debian
# bookworm machine with no Docker engine and no reachable container registry (only the package
# registries, through the machine's own apt and pip configuration). Run as root.
#
#   deploy/smoke.sh [--keep]        (or: make deploy-test)
#   deploy/smoke.sh --build-only    steps 1-4 only, images kept (deploy/k8s_smoke.sh uses it)
#
#   1. installs podman, runc, slirp4netns and debootstrap with apt when missing; podman runs
#      with runc (crun fails on setrlimit on these machines), through a containers.conf of
#      its own (CONTAINERS_CONF), so the machine's podman configuration is left alone;
#   2. base images made from Debian's packages (no registry): `debootstrap bookworm` with
#      python3 (3.11) + venv for PYTHON_IMAGE, and with nginx-light for the proxy, each
#      slimmed as Debian's slim images are (no docs but copyright, man pages, locales) and
#      imported with `podman import`;
#   3. a local package index with the CPU torch wheel and its dependencies, fetched by
#      `pip download` through the machine's pip configuration, given to the build as
#      TORCH_INDEX_URL=file:///wheel-index/simple (a build volume);
#   4. `podman build` of the Dockerfile's two targets with those build arguments, each timed:
#      `--target api` (localhost/digits-serve-api:smoke, no torch), then `--target worker`
#      (localhost/digits-serve-worker:smoke, torch), which reuses the stages they share;
#   5. deploy/smoke_stack.py: the image checks (both sizes, torch absent from the API image
#      and present in the worker's, the API image's cold start), then the compose stack
#      (2 API containers of the API image, 1 Celery worker of the worker image, nginx with
#      deploy/nginx.conf) against this machine's PostgreSQL and Redis, then the faults. See
#      docs/deployment.md for the checks and the figures.
#
# Everything it makes (containers, volume, images, the database, the Redis db number, the
# work folder) is removed on exit; --keep (or SMOKE_KEEP=1) keeps the images for a quicker
# rerun (a rerun reuses base images that exist and never removes images it did not make).
set -euo pipefail
cd "$(dirname "$0")/.."

keep=${SMOKE_KEEP:-0}
build_only=0
for arg in "$@"; do
  case $arg in
    --keep) keep=1 ;;
    --build-only) build_only=1; keep=1 ;;
    -h | --help) sed -n '2,/^set -e/{/^set -e/!p}' "$0"; exit 0 ;;
    *) echo "smoke: unknown argument $arg (usage: deploy/smoke.sh [--keep] [--build-only])" >&2; exit 2 ;;
  esac
done

say() { printf '\n== smoke %s: %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf '\nsmoke: FAILED: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (rootful podman, debootstrap)"
[[ -x .venv/bin/python ]] || die ".venv is missing: run 'make install' first (make deploy-test does)"

prefix=digits-smoke
python_image=localhost/$prefix/python:3.11-bookworm
nginx_image=localhost/$prefix/nginx:bookworm
api_image=localhost/digits-serve-api:smoke
worker_image=localhost/digits-serve-worker:smoke
work=$(mktemp -d /var/tmp/digits-smoke.XXXXXX)
made_images=()
started=$(date +%s)

cleanup() {
  local rc=$?
  set +e
  say "cleanup"
  # Containers and the volume of the stack (smoke_stack.py removes them too; this catches
  # an interrupted run).
  podman ps -a --filter "label=$prefix" --format '{{.ID}}' | xargs -r podman rm -f -v -t 0 >/dev/null
  podman volume ls --filter "label=$prefix" --format '{{.Name}}' | xargs -r podman volume rm -f >/dev/null
  if [[ $keep == 1 ]]; then
    echo "smoke: --keep: images kept: $python_image $nginx_image $api_image $worker_image"
  elif ((${#made_images[@]})); then
    podman rmi -f "${made_images[@]}" >/dev/null 2>&1
    podman image prune -f >/dev/null 2>&1   # the dangling build stages
  fi
  rm -rf "$work"
  local took=$(($(date +%s) - started))
  if [[ $rc == 0 ]]; then
    echo "smoke: PASSED in ${took} s"
  else
    echo "smoke: FAILED (exit $rc) after ${took} s" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. the tools ---------------------------------------------------------------------------
say "tools: podman, runc, slirp4netns, debootstrap"
missing=()
for pair in podman:podman runc:runc slirp4netns:slirp4netns debootstrap:debootstrap; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
  echo "smoke: apt-get install ${missing[*]}"
  apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
fi
# shellcheck source=deploy/podman.sh
source deploy/podman.sh
podman_conf "$work"
podman info >/dev/null || die "podman does not work here (see 'podman info')"

# The machine's Debian mirror, as apt is configured (never a host name written here).
# shellcheck disable=SC2016  # apt's own $(FIELD) placeholders
mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Identifier: Packages' \
  | awk '$2 == "bookworm" {print $1; exit}')
[[ -n $mirror ]] || die "no bookworm repository in apt's configuration (apt-get update?)"

# --- 2. base images from Debian's packages --------------------------------------------------
make_base() {  # image packages...
  local image=$1 name
  shift
  if podman image exists "$image"; then
    echo "smoke: $image exists, reused"
    return
  fi
  name=${image##*/}
  name=${name%%:*}
  echo "smoke: debootstrap bookworm + $* (from $mirror)"
  mkdir -p "$work/debs"
  local t0=$SECONDS
  nice -n 10 debootstrap --variant=minbase --include="$(IFS=,; echo "$*")" \
    --cache-dir="$work/debs" bookworm "$work/rootfs-$name" "$mirror" >"$work/debootstrap-$name.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap-$name.log" >&2; die "debootstrap of $image failed"; }
  local root=$work/rootfs-$name
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  rm -f "$root"/etc/nginx/sites-enabled/default
  # What Debian's slim images (the base of python:3.11-slim) leave out: documentation but the
  # copyright files, man and info pages, locales.
  if [[ -d $root/usr/share/doc ]]; then
    find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  fi
  rm -rf "$root"/usr/share/{man,info,groff,lintian,linda,locale}/*
  local change=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change 'ENV LANG=C.UTF-8')
  if [[ $name == nginx ]]; then
    change+=(--change 'CMD ["nginx", "-g", "daemon off;"]')
  else
    change+=(--change 'CMD ["python3"]')
  fi
  tar -C "$work/rootfs-$name" -c . | podman import --quiet "${change[@]}" - "$image" >/dev/null \
    || die "podman import of $image failed"
  rm -rf "$work/rootfs-$name"
  made_images+=("$image")
  echo "smoke: $image made in $((SECONDS - t0)) s ($(podman image inspect --format '{{.Size}}' "$image") bytes)"
}
say "base images (debootstrap bookworm, podman import)"
make_base "$python_image" python3 python3-venv python-is-python3 ca-certificates
make_base "$nginx_image" nginx-light

# --- 3. a local package index holding the CPU torch wheel -----------------------------------
torch_pin=$(sed -n 's/^ *"\(torch==[^"]*\)".*/\1/p' pyproject.toml)
[[ -n $torch_pin ]] || die "no torch pin in pyproject.toml"
say "local package index: $torch_pin and its dependencies (pip download, the machine's pip config)"
.venv/bin/python -m pip download --quiet --only-binary=:all: --python-version 3.11 \
  -d "$work/index/files" "$torch_pin" || die "pip download $torch_pin failed"
ls "$work/index/files"/torch-*+cpu-* >/dev/null 2>&1 \
  || die "pip found no CPU build of $torch_pin (the +cpu wheel): $(ls "$work/index/files")"
.venv/bin/python - "$work/index" <<'EOF'
"""A PEP 503 simple index over the wheels in files/ (pip reads file:// URLs)."""
import hashlib, html, re, sys
from pathlib import Path

index = Path(sys.argv[1])
projects: dict[str, list[Path]] = {}
for wheel in sorted((index / "files").glob("*.whl")):
    projects.setdefault(re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower(), []).append(wheel)
for name, wheels in projects.items():
    page = index / "simple" / name
    page.mkdir(parents=True)
    links = "".join(
        f'<a href="../../files/{html.escape(w.name)}#sha256='
        f'{hashlib.sha256(w.read_bytes()).hexdigest()}">{html.escape(w.name)}</a><br>\n'
        for w in wheels
    )
    (page / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")
(index / "simple" / "index.html").write_text(
    "".join(f'<a href="{n}/">{n}</a><br>\n' for n in sorted(projects))
)
print(f"smoke: index of {len(projects)} projects: {', '.join(sorted(projects))}")
EOF

# --- 4. the images --------------------------------------------------------------------------
say "podman build --target api, --target worker (PYTHON_IMAGE=$python_image, TORCH_INDEX_URL=file:///wheel-index/simple)"
# --network host: the project's own dependencies come from the machine's package registry
# the way pip's defaults reach it; torch and its dependencies from the local index only.
# The machine's pip configuration, for the build's RUN steps only (build volumes, never in the
# image): the CA bundle pip is told to trust (these machines reach the registry through a TLS
# proxy of their own, whose CA Debian's bundle lacks) and the index, when either is set.
pip_cert=${PIP_CERT:-$(.venv/bin/python -m pip config get global.cert 2>/dev/null || true)}
pip_index=${PIP_INDEX_URL:-$(.venv/bin/python -m pip config get global.index-url 2>/dev/null || true)}
build_volumes=(--volume "$work/index:/wheel-index:ro" --volume "$work/pip.conf:/etc/pip.conf:ro")
{
  echo "[global]"
  if [[ -n $pip_cert ]]; then
    [[ -r $pip_cert ]] || die "pip's cert $pip_cert is not readable"
    echo "cert = /run/smoke-pip-ca.crt"
    build_volumes+=(--volume "$pip_cert:/run/smoke-pip-ca.crt:ro")
  fi
  if [[ -n $pip_index ]]; then echo "index-url = $pip_index"; fi
} >"$work/pip.conf"
build() {  # target image: sets build_s
  local t0=$SECONDS
  nice -n 10 podman build --format docker --pull=never --network host "${build_volumes[@]}" \
    --build-arg "PYTHON_IMAGE=$python_image" \
    --build-arg "TORCH_INDEX_URL=file:///wheel-index/simple" \
    --build-arg "TORCH_VERSION=${torch_pin#torch==}" \
    --label "$prefix=build" \
    --target "$1" -t "$2" -f Dockerfile . >"$work/build-$1.log" 2>&1 \
    || { tail -n 40 "$work/build-$1.log" >&2; die "podman build --target $1 failed (log above)"; }
  build_s=$((SECONDS - t0))
  made_images+=("$2")
  echo "smoke: built $2 (--target $1) in ${build_s} s"
}
# The API first: the worker's build then reuses the stages both start from (deps, runtime).
build api "$api_image"
api_build_s=$build_s
build worker "$worker_image"
worker_build_s=$build_s
if [[ $build_only == 1 ]]; then
  exit 0
fi

# --- 5. the image checks, the stack, the faults ---------------------------------------------
say "image checks, stack, faults (deploy/smoke_stack.py)"
.venv/bin/python deploy/smoke_stack.py --api-image "$api_image" --worker-image "$worker_image" \
  --nginx-image "$nginx_image" --work "$work" --label "$prefix" \
  --api-build-seconds "$api_build_s" --worker-build-seconds "$worker_build_s" \
  || die "deploy/smoke_stack.py failed (its last lines above)"
