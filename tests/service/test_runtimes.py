"""Two runtimes for one model: ONNX Runtime answers what TorchScript answers, ``auto`` falls
back to TorchScript for a version without ``model.onnx``, and a modified ``model.onnx`` is
refused as a modified ``model.pt`` is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.http.app import create_app
from tests.conftest import make_settings
from training.contract import MANIFEST_FILE, ONNX_FILE
from training.data import Split

SHIPPED = ("logistic", "fnn", "cnn", "ensemble")


def _answers(models: Path, runtime: str, rows: list[list[float]]) -> dict[str, Any]:
    """Each shipped model's /predict answer to ``rows`` under ``runtime``."""
    with TestClient(create_app(make_settings(models, runtime=runtime))) as client:
        answers = {}
        for name in SHIPPED:
            response = client.post(f"/models/{name}/predict", json={"instances": rows})
            assert response.status_code == 200, response.text
            answers[name] = response.json()
        return answers


def test_onnxruntime_answers_what_torchscript_answers(shipped_models: Path, split: Split) -> None:
    """The 360 test rows through every shipped model under each runtime: the same labels and
    outlier flags, probabilities and outlier scores within 1e-4; each answer names its runtime."""
    rows = split.x_test.tolist()
    torchscript = _answers(shipped_models, "torchscript", rows)
    onnx = _answers(shipped_models, "onnxruntime", rows)
    for name in SHIPPED:
        assert torchscript[name]["runtime"] == "torchscript"
        assert onnx[name]["runtime"] == "onnxruntime"
        a, b = torchscript[name]["predictions"], onnx[name]["predictions"]
        assert [p["label"] for p in a] == [p["label"] for p in b]
        assert [p["outlier"] for p in a] == [p["outlier"] for p in b]
        pa = np.array([p["probabilities"] for p in a])
        pb = np.array([p["probabilities"] for p in b])
        assert np.abs(pa - pb).max() < 1e-4
        sa = np.array([p["outlier_score"] for p in a])
        sb = np.array([p["outlier_score"] for p in b])
        assert (np.abs(sa - sb) / np.maximum(1.0, np.abs(sa))).max() < 1e-4


def _strip_onnx(folder: Path) -> None:
    """Make ``folder`` a version exported before ONNX: no file, no manifest entry."""
    (folder / ONNX_FILE).unlink()
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    del manifest["onnx"]
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))


def _served_by(client: TestClient) -> dict[str, tuple[str, str]]:
    """Per model with a loaded version, (runtime, platform) of its version 1 as GET /models
    lists it."""
    listed = [m for m in client.get("/models").json()["models"] if m["versions"]]
    return {m["name"]: (m["versions"][0]["runtime"], m["versions"][0]["platform"]) for m in listed}


def test_auto_serves_a_version_without_model_onnx_with_torchscript(shipped_models: Path) -> None:
    """Under ``auto`` (on the CPU) a version exported before ONNX is served by TorchScript and
    the others by ONNX Runtime: /models, /v2 metadata and the answers say which."""
    _strip_onnx(shipped_models / "fnn" / "1")
    with TestClient(create_app(make_settings(shipped_models, runtime="auto"))) as client:
        served = _served_by(client)
        assert served["fnn"] == ("torchscript", "pytorch_torchscript")
        assert served["cnn"] == ("onnxruntime", "onnxruntime_onnx")
        assert client.get("/v2/models/fnn").json()["platform"] == "pytorch_torchscript"
        assert client.get("/v2/models/cnn").json()["platform"] == "onnxruntime_onnx"
        body = {"pixels": [0] * 64}
        assert client.post("/models/fnn/predict", json=body).json()["runtime"] == "torchscript"
        assert client.post("/models/cnn/predict", json=body).json()["runtime"] == "onnxruntime"


def test_onnxruntime_refuses_a_version_without_model_onnx(shipped_models: Path) -> None:
    """Forced ``onnxruntime``: a version without ``model.onnx`` is not served (503 saying
    why); the others are."""
    folder = shipped_models / "fnn" / "1"
    _strip_onnx(folder)
    with TestClient(create_app(make_settings(shipped_models, runtime="onnxruntime"))) as client:
        response = client.post("/models/fnn/predict", json={"pixels": [0] * 64})
        assert response.status_code == 503
        message = response.json()["error"]["message"]
        assert "lists no model.onnx" in message
        assert "python -m training.reexport" in message
        assert set(_served_by(client)) == {"logistic", "cnn", "ensemble"}


@pytest.mark.parametrize("runtime", ["auto", "torchscript", "onnxruntime"])
def test_a_tampered_model_onnx_is_refused_while_the_others_serve(
    shipped_models: Path, runtime: str
) -> None:
    """A ``model.onnx`` whose sha256 differs from its manifest refuses its version whichever
    runtime would serve it, as a modified ``model.pt`` does: not ready, 503 naming the file
    and the sha256; the other models serve."""
    folder = shipped_models / "cnn" / "1"
    with (folder / ONNX_FILE).open("ab") as fh:
        fh.write(b"tampered")
    with TestClient(create_app(make_settings(shipped_models, runtime=runtime))) as client:
        ready = client.get("/health/ready").json()
        assert ready["status"] == "degraded"
        assert list(ready["failures"]) == [str(folder)]
        assert ready["models"]["cnn"]["ready"] is False
        response = client.post("/models/cnn/predict", json={"pixels": [0] * 64})
        assert response.status_code == 503
        message = response.json()["error"]["message"]
        assert "model.onnx has sha256" in message
        assert client.post("/models/fnn/predict", json={"pixels": [0] * 64}).status_code == 200


def test_an_unknown_runtime_setting_is_refused_naming_the_choices(models_dir: Path) -> None:
    """``DIGITS_RUNTIME=tensorrt`` stops the settings, listing the runtimes there are."""
    with pytest.raises(ValidationError, match="'auto', 'torchscript' or 'onnxruntime'"):
        make_settings(models_dir, runtime="tensorrt")
