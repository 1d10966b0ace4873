"""Liveness and readiness: readiness is recomputed as models come and go, and says why."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi.testclient import TestClient

from service.http.app import create_app
from service.inference.loaded import LoadedModel
from service.settings import Settings
from tests.conftest import make_settings


def wait_until(check: Callable[[], Any], what: str, timeout: float = 10) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.05)
    return result


def test_ready_lists_each_model_state(client: TestClient) -> None:
    """Once the lifespan has loaded the models, /health/ready answers 200 with each model."""
    response = client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["models"]["cnn"] == {
        "ready": True,
        "default_version": 1,
        "versions": [1],
        "reason": None,
    }
    assert sorted(body["models"]) == ["cnn", "fnn", "logistic"]
    assert client.get("/health/live").json() == {"status": "ok"}


def test_empty_folder_becomes_ready_when_models_arrive(tmp_path: Path, tiny_models: Path) -> None:
    """Started on an empty folder the service is 503; models copied in make it ready."""
    models = tmp_path / "models"
    models.mkdir()
    with TestClient(create_app(make_settings(models, reload_interval_s=0.05))) as client:
        response = client.get("/health/ready")
        assert response.status_code == 503
        assert (response.json()["status"], response.json()["reason"]) == (
            "not_ready",
            "no model on disk",
        )
        # The Open Inference Protocol's readiness: false is a 4xx (400, as Triton answers).
        v2_ready = client.get("/v2/health/ready")
        assert (v2_ready.status_code, v2_ready.json()) == (400, {"ready": False})
        shutil.copytree(tiny_models / "fnn", models / "fnn")
        wait_until(lambda: client.get("/health/ready").status_code == 200, "readiness")
        assert client.get("/v2/health/ready").json() == {"ready": True}
        assert client.post("/models/fnn/predict", json={"pixels": [0] * 64}).status_code == 200


def test_deleted_models_folder_makes_the_service_not_ready(models_dir: Path) -> None:
    """With the models folder deleted, readiness turns 503 and names the missing folder."""
    with TestClient(create_app(make_settings(models_dir, reload_interval_s=0.05))) as client:
        assert client.get("/health/ready").status_code == 200
        shutil.rmtree(models_dir)
        response = wait_until(
            lambda: (r := client.get("/health/ready")).status_code == 503 and r, "not ready"
        )
        assert response.json()["reason"] == f"the models folder {models_dir} does not exist"
        assert client.post("/predict", json={"pixels": [0] * 64}).status_code == 404


@pytest.mark.anyio
async def test_ready_is_503_starting_until_every_model_is_warm(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A probe sent while the models are still warming up is told 503 ``starting``; once
    start-up is done it is told 200, every model warm."""
    warming, release = threading.Event(), threading.Event()
    warmed: list[str] = []
    original = LoadedModel.warm_up

    def held(model: LoadedModel) -> None:  # the first warm-up waits until the probe is in
        warming.set()
        release.wait(60)
        original(model)
        warmed.append(model.name)

    monkeypatch.setattr(LoadedModel, "warm_up", held)
    app = create_app(settings)
    manager = LifespanManager(app, startup_timeout=120)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        startup = asyncio.create_task(manager.__aenter__())
        assert await asyncio.to_thread(warming.wait, 60), "no model started warming up"
        during = await client.get("/health/ready")
        release.set()
        await startup
        try:
            after = await client.get("/health/ready")
        finally:
            await manager.__aexit__(None, None, None)
    assert (during.status_code, during.json()) == (
        503,
        {"status": "not_ready", "reason": "starting"},
    )
    assert (after.status_code, after.json()["status"]) == (200, "ready")
    assert sorted(warmed) == ["cnn", "fnn", "logistic"]


def test_a_duplicate_version_made_by_hand_makes_the_service_degraded(models_dir: Path) -> None:
    """A runtime folder repeating a shipped name and version is refused: readiness stays 200
    but says ``degraded``, naming the folder and why, while the shipped version serves."""
    settings = make_settings(models_dir)
    duplicate = settings.versions_dir / "fnn" / "1"
    shutil.copytree(models_dir / "fnn" / "1", duplicate)
    with TestClient(create_app(settings)) as client:
        response = client.get("/health/ready")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "degraded"
        assert f"refused {duplicate}: version 1 of fnn is also " in body["reason"]
        assert list(body["failures"]) == [str(duplicate)]
        assert body["models"]["fnn"]["ready"] is True
        assert client.post("/models/fnn/predict", json={"pixels": [0] * 64}).status_code == 200
