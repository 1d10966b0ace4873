"""The version store as it is deployed: ``python -m service`` replicas and a job's worker
process that share nothing but the bucket (moto's S3 server, its own process) and the
database; each replica has its own cache (``DIGITS_VERSIONS_DIR``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.inference.artifact_store import VersionStore
from tests.service.conftest import write_artifact
from tests.service.live import LiveService, running_service
from tests.service.s3 import BUCKET, ROOT, Moto, point_at, running
from tests.service.test_registry import lit

URL = f"s3://{BUCKET}/prod"
PIXELS = {"pixels": [0.0] * 64}
QUICK_JOB = {"family": "logistic", "hyperparameters": {"iterations": 20, "acc_step": 10}}


def until(check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """``check()``'s first truthy value, polled every 0.1 s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"{check} stayed false for {timeout} s")


def finished_job(service: LiveService, job: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{service.url}/train", json=job, timeout=10)
    assert response.status_code == 202, response.text
    url = f"{service.url}/train/{response.json()['id']}"

    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = httpx.get(url, timeout=10).json()
        return body if body["status"] in ("succeeded", "failed", "cancelled") else None

    result: dict[str, Any] = until(done, timeout=120)
    return result


def answers(service: LiveService, name: str, version: int) -> dict[str, Any] | None:
    url = f"{service.url}/models/{name}/predict?version={version}"
    response = httpx.post(url, json=PIXELS, timeout=10)
    return response.json() if response.status_code == 200 else None


def replica_settings(workdir: Path, **more: str) -> dict[str, str]:
    workdir.mkdir()
    return {
        "DIGITS_VERSIONS_URL": URL,
        "DIGITS_VERSIONS_DIR": str(workdir / "cache"),
        "DIGITS_RELOAD_INTERVAL_S": "0.2",
        "PYTHONPATH": str(ROOT),
        **more,
    }


def test_a_version_a_worker_publishes_is_served_by_every_replica(
    tiny_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replica A runs a short job in its worker process, which uploads the version; replica
    B, sharing only the bucket and the database, copies it into its own cache and serves
    it too. The bucket holds the version under ``prefix/name/version``."""
    moto = Moto()
    point_at(monkeypatch, moto.port)
    database = {"DIGITS_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}"}
    with (
        running(moto),
        running_service(
            tiny_models, tmp_path / "a", replica_settings(tmp_path / "a", **database)
        ) as a,
        running_service(
            tiny_models, tmp_path / "b", replica_settings(tmp_path / "b", **database)
        ) as b,
    ):
        job = finished_job(a, QUICK_JOB)
        assert job["status"] == "succeeded", job["error"]
        assert job["model"] == {"name": "logistic", "version": 2}  # after the shipped 1
        assert "prod/logistic/2/manifest.json" in moto.objects()
        for replica in (a, b):
            answer = until(lambda r=replica: answers(r, "logistic", 2), timeout=30)
            assert answer["version"] == "2"
        for cache in (tmp_path / "a" / "cache", tmp_path / "b" / "cache"):
            assert (cache / "logistic" / "2" / "manifest.json").is_file()
            assert [p.name for p in cache.iterdir()] == ["logistic"]  # nothing half-written


def test_a_store_unreachable_at_start_degrades_readiness_until_it_returns(
    tiny_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No S3 server at start: the service starts and serves its shipped models, readiness
    says ``degraded`` with the reason, and a job fails saying the store cannot be reached
    without leaving a version anywhere. Once the server is up (same port), the next refresh
    is ``ready`` again and serves what is published there."""
    moto = Moto()  # not started: nothing listens on its port
    point_at(monkeypatch, moto.port)
    with running_service(tiny_models, tmp_path / "a", replica_settings(tmp_path / "a")) as api:
        ready = httpx.get(f"{api.url}/health/ready", timeout=10)
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["version_store"].startswith(f"cannot list {URL}: ")
        assert f"version store: cannot list {URL}: " in ready.json()["reason"]
        assert answers(api, "logistic", 1) is not None  # the shipped version answers

        job = finished_job(api, QUICK_JOB)
        assert job["status"] == "failed"
        assert job["error"].startswith(f"StoreError: cannot list {URL}: ")
        assert str(moto.port) not in job["error"]  # the endpoint is not told to readers
        assert str(moto.port) not in ready.json()["version_store"]
        cache = tmp_path / "a" / "cache"
        assert not (cache / "logistic").exists()
        assert not cache.exists() or list(cache.iterdir()) == []  # no staging folder left

        with running(moto):
            store = VersionStore(URL)
            version = store.claim("logistic", 1)
            folder = write_artifact(tmp_path / "src", "logistic", version, lit(4))
            store.upload(folder, "logistic", version)

            def is_ready() -> bool:
                body = httpx.get(f"{api.url}/health/ready", timeout=10).json()
                return body["status"] == "ready" and "version_store" not in body

            until(is_ready, timeout=30)
            answer = until(lambda: answers(api, "logistic", version), timeout=30)
            assert answer["predictions"][0]["label"] == 4  # the version published there
