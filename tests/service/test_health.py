"""Liveness and readiness: readiness is recomputed as models come and go, and says why."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
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
        assert response.json()["reason"] == "no model on disk"
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


def test_ready_flips_only_after_warm_up(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While models warm up /health/ready is 503; it answers 200 once all are warm."""
    app = create_app(settings)
    seen_during_warm_up: list[bool] = []
    original = LoadedModel.warm_up

    def spy(model: LoadedModel) -> None:
        seen_during_warm_up.append(app.state.started)
        original(model)

    monkeypatch.setattr(LoadedModel, "warm_up", spy)
    with TestClient(app) as client:
        assert client.get("/health/ready").status_code == 200
    assert seen_during_warm_up == [False, False, False]


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
