"""deploy/check_compose.py on docker-compose.yml: the file passes, and each image rule catches
the fault it is for, planted in a copy (the API built from the worker target, a Celery worker
from the API target, one image name given to both targets)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.deploy.common import ROOT, load_deploy_script

checks = load_deploy_script("check_compose")


@pytest.fixture
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_the_compose_file_passes(compose: dict[str, Any]) -> None:
    assert checks.problems(compose) == []


def test_api_and_workers_run_their_own_images(compose: dict[str, Any]) -> None:
    """api: the `api` target (no torch); worker and worker-gpu: the `worker` target (torch),
    each under an image name of its own."""
    services = compose["services"]
    assert (services["api"]["image"], services["api"]["build"]["target"]) == (
        "digits-serve-api:latest",
        "api",
    )
    for name in ("worker", "worker-gpu"):
        assert services[name]["build"]["target"] == "worker", name
        assert services[name]["image"].startswith("digits-serve-worker:"), name
    assert "TORCH_INDEX_URL" not in (services["api"]["build"].get("args") or {})


def test_the_image_rules_catch_their_faults(compose: dict[str, Any]) -> None:
    planted = copy.deepcopy(compose)
    services = planted["services"]
    services["api"]["build"]["target"] = "worker"
    services["worker"]["build"]["target"] = "api"
    services["worker"]["image"] = services["api"]["image"]
    found = checks.problems(planted)
    assert any("api: should be built from the Dockerfile's `api` target" in p for p in found)
    assert any("worker: a Celery worker should be built from `worker`" in p for p in found)
    assert any("is built from several targets: ['api', 'worker']" in p for p in found), found
    no_target = copy.deepcopy(compose)
    del no_target["services"]["api"]["build"]["target"]  # the last stage: not said
    assert any("`api` target" in p for p in checks.problems(no_target))
