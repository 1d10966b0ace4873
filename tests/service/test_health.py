"""Liveness and readiness probes."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.registry import LoadedModel
from service.settings import Settings


def test_ready_lists_loaded_models(client: TestClient) -> None:
    """Once the lifespan has loaded the models, /health/ready answers 200 and names them."""
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["models"] == {"cnn": [1], "fnn": [1], "logistic": [1]}


def test_ready_is_503_without_models(tmp_path: Path) -> None:
    """With an empty models folder the service is live but not ready."""
    settings = Settings(models_dir=tmp_path / "empty", device="cpu", _env_file=None)  # type: ignore[call-arg]
    with TestClient(create_app(settings)) as client:
        assert client.get("/health/live").status_code == 200
        response = client.get("/health/ready")
        assert response.status_code == 503
        assert response.json()["status"] == "not_ready"


def test_ready_flips_only_after_warm_up(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While models warm up /health/ready is still 503; it answers 200 once all are warm."""
    app = create_app(settings)
    seen_during_warm_up: list[bool] = []
    original = LoadedModel.warm_up

    def spy(model: LoadedModel) -> None:
        seen_during_warm_up.append(app.state.ready)
        original(model)

    monkeypatch.setattr(LoadedModel, "warm_up", spy)
    with TestClient(app) as client:
        assert client.get("/health/ready").status_code == 200
    assert seen_during_warm_up == [False, False, False]
    assert app.state.ready is False  # and back to not ready once shut down
