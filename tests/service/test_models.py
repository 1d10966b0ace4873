"""What is served: /models, new versions without a restart, refused artifacts."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from service.http.app import create_app
from tests.conftest import make_settings
from tests.service.conftest import republish
from tests.service.test_health import wait_until


def test_models_lists_every_version_with_manifest_and_default(client: TestClient) -> None:
    """GET /models names each model, its versions with manifests, the default and the device."""
    response = client.get("/models")
    assert response.status_code == 200
    body = response.json()
    assert body["device"] == "cpu"
    assert [m["name"] for m in body["models"]] == ["cnn", "fnn", "logistic"]
    cnn = body["models"][0]
    assert cnn["default_version"] == 1
    (version,) = cnn["versions"]
    assert version["is_default"] is True
    manifest = version["manifest"]
    assert manifest["family"] == "cnn"
    assert manifest["input"]["shape"] == [None, 64]
    assert {"test_accuracy", "train_accuracy"} <= set(manifest["metrics"])
    assert len(manifest["sha256"]) == 64


def test_model_detail_and_unknown_model(client: TestClient) -> None:
    """GET /models/{name} describes one model; an unknown name is a 404 listing the others."""
    assert client.get("/models/fnn").json()["name"] == "fnn"
    response = client.get("/models/resnet")
    assert response.status_code == 404
    assert response.json()["error"]["expected"] == "one of: cnn, fnn, logistic"


def test_new_version_is_servable_without_restart_but_not_default(models_dir: Path) -> None:
    """A version renamed into the folder is served by ``?version=`` after the next poll; the
    default stays the oldest version: making a version never changes what serves by default."""
    settings = make_settings(models_dir, reload_interval_s=0.05)
    body = {"pixels": [0] * 64}
    with TestClient(create_app(settings)) as client:
        republish(models_dir, "fnn", old=1, new=2)
        wait_until(
            lambda: client.post("/models/fnn/predict?version=2", json=body).status_code == 200,
            "version 2 served",
        )
        fnn = client.get("/models/fnn").json()
        assert [v["version"] for v in fnn["versions"]] == [1, 2]
        assert fnn["default_version"] == 1
        assert client.post("/models/fnn/predict", json=body).json()["version"] == "1"


def test_tampered_artifact_is_refused_while_the_others_serve(models_dir: Path) -> None:
    """A model.pt whose sha256 differs from its manifest is not served, its model is not
    ready (503 naming why), and the other models serve."""
    folder = models_dir / "fnn" / "1"
    with (folder / "model.pt").open("ab") as fh:
        fh.write(b"tampered")
    with TestClient(create_app(make_settings(models_dir))) as client:
        ready = client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        failures = ready.json()["failures"]
        assert list(failures) == [str(folder)]
        assert "sha256" in failures[str(folder)]
        assert ready.json()["models"]["fnn"]["ready"] is False
        response = client.post("/models/fnn/predict", json={"pixels": [0] * 64})
        assert response.status_code == 503
        assert "sha256" in response.json()["error"]["message"]
        assert client.post("/models/cnn/predict", json={"pixels": [0] * 64}).status_code == 200
