"""Checks of docker-compose.yml that its JSON schema cannot express.

- every ``DIGITS_*`` variable set in a service is a field of ``service.settings.Settings``
  (a typo would otherwise be ignored silently: the settings use ``extra="ignore"``);
- the ``api`` service publishes no host port, so ``--scale api=N`` cannot clash;
- every ``depends_on: {condition: service_healthy}`` names a service that has a health check;
- the API and worker commands are the ones the README and docs/deployment.md document;
- the two images: ``api`` is built from the Dockerfile's ``api`` target (no torch), every
  Celery worker from its ``worker`` target, and no image name is given to two targets (the
  second build would take the first one's name).

Usage: ``python deploy/check_compose.py [docker-compose.yml]``; exit status 1 on a problem.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from service.settings import Settings

API_COMMAND = ["python", "-m", "service", "--host", "0.0.0.0", "--port", "8000"]
WORKER_PREFIX = ["celery", "-A", "service.jobs.celery_app", "worker"]
#: The Dockerfile's targets: the API's image (no torch) and the worker's (torch).
API_TARGET, WORKER_TARGET = "api", "worker"


def problems(compose: dict[str, Any]) -> list[str]:
    """Every problem found in a parsed compose file (empty when it is fine)."""
    found: list[str] = []
    services: dict[str, Any] = compose.get("services", {})
    fields = set(Settings.model_fields)
    for name, service in services.items():
        env = service.get("environment") or {}
        keys = env if isinstance(env, dict) else [item.split("=", 1)[0] for item in env]
        for key in keys:
            if key.startswith("DIGITS_") and key[7:].lower() not in fields:
                found.append(f"{name}: {key} is not a setting (see service/settings.py)")
        for dep, spec in (service.get("depends_on") or {}).items():
            condition = spec.get("condition") if isinstance(spec, dict) else None
            if condition == "service_healthy" and "healthcheck" not in services.get(dep, {}):
                found.append(f"{name}: waits for {dep} to be healthy but {dep} has no healthcheck")
    api = services.get("api", {})
    if api.get("ports"):
        found.append("api: publishes a host port; `--scale api=N` needs it unpublished")
    if api.get("command") != API_COMMAND:
        found.append(f"api: command should be {API_COMMAND}, got {api.get('command')}")
    worker = services.get("worker", {})
    if worker.get("command", [])[: len(WORKER_PREFIX)] != WORKER_PREFIX:
        found.append(f"worker: command should start with {WORKER_PREFIX}")
    found += image_problems(services)
    return found


def target_of(service: dict[str, Any]) -> str | None:
    """The Dockerfile target a service is built from (None: not built here)."""
    build = service.get("build")
    if not isinstance(build, dict):
        return None if build is None else ""  # `build: .` names no target: the last stage
    return str(build.get("target", ""))


def image_problems(services: dict[str, Any]) -> list[str]:
    """``api`` from the ``api`` target, Celery workers from ``worker``; one target per image."""
    found: list[str] = []
    if target_of(services.get("api", {})) != API_TARGET:
        found.append(f"api: should be built from the Dockerfile's `{API_TARGET}` target")
    targets: dict[str, set[str]] = {}
    for name, service in services.items():
        target = target_of(service)
        if target is None:
            continue
        command = service.get("command") or []
        if command[: len(WORKER_PREFIX)] == WORKER_PREFIX and target != WORKER_TARGET:
            found.append(f"{name}: a Celery worker should be built from `{WORKER_TARGET}`")
        if "image" not in service:
            found.append(f"{name}: built without an image name")
        else:
            targets.setdefault(str(service["image"]), set()).add(target)
    for image, built in sorted(targets.items()):
        if len(built) > 1:
            found.append(f"image {image} is built from several targets: {sorted(built)}")
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else "docker-compose.yml")
    found = problems(yaml.safe_load(path.read_text()))
    for problem in found:
        sys.stderr.write(f"{path}: {problem}\n")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
