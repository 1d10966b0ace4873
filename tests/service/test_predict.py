"""Predictions through HTTP: shipped models' accuracy, a hand-computable model, body shapes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from service.http.app import create_app
from tests.conftest import make_settings
from tests.service.conftest import write_artifact
from training.contract import read_manifest
from training.data import Split


@pytest.mark.parametrize("name", ["logistic", "fnn", "cnn"])
def test_shipped_model_reproduces_its_manifest_test_accuracy(
    name: str, shipped_models: Path, split: Split
) -> None:
    """All 360 test rows through HTTP give exactly the test accuracy the manifest records."""
    manifest = read_manifest(shipped_models / name / "1")
    with TestClient(create_app(make_settings(shipped_models))) as client:
        body = {"instances": split.x_test.tolist()}
        response = client.post(f"/models/{name}/predict?version=1", json=body)
    assert response.status_code == 200, response.text
    labels = [p["label"] for p in response.json()["predictions"]]
    correct = sum(int(a == b) for a, b in zip(labels, split.y_test.tolist(), strict=True))
    assert correct / len(labels) == pytest.approx(manifest.metrics.test_accuracy, abs=1e-9)


def test_known_weights_linear_gives_the_hand_computed_answer(
    tmp_path: Path, serving_runtime: str
) -> None:
    """A Linear(64, 10) with identity weights on the first 10 pixels predicts the lit pixel,
    in the runtime the suite runs under (the answer names it)."""
    linear = torch.nn.Linear(64, 10)
    with torch.no_grad():
        linear.weight.zero_()
        linear.weight[:, :10] = torch.eye(10)
        linear.bias.zero_()
    write_artifact(tmp_path, "known", 1, linear)
    pixels = [0.0] * 64
    pixels[3] = 16.0  # logits = (0, 0, 0, 16, 0, ...)
    with TestClient(create_app(make_settings(tmp_path, default_model="known"))) as client:
        response = client.post("/predict", json={"pixels": pixels})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["version"], body["device"]) == ("known", "1", "cpu")
    assert body["runtime"] == serving_runtime
    (prediction,) = body["predictions"]
    assert prediction["label"] == 3
    expected = math.exp(16) / (math.exp(16) + 9)
    assert prediction["probabilities"][3] == pytest.approx(expected, rel=1e-6)
    assert sum(prediction["probabilities"]) == pytest.approx(1.0, rel=1e-6)


def test_default_route_answers_with_the_default_model(client: TestClient) -> None:
    """POST /predict uses settings.default_model (cnn) at its default version."""
    response = client.post("/predict", json={"pixels": [0] * 64})
    assert response.status_code == 200
    assert (response.json()["model"], response.json()["version"]) == ("cnn", "1")


def test_batch_answers_one_prediction_per_row_in_order(client: TestClient, split: Split) -> None:
    """A batch gives the same answer per row as the rows sent one at a time, in order."""
    rows = split.x_test[:5].tolist()
    batch = client.post("/models/fnn/predict", json={"instances": rows}).json()["predictions"]
    singles = [
        client.post("/models/fnn/predict", json={"pixels": row}).json()["predictions"][0]
        for row in rows
    ]
    assert [p["label"] for p in batch] == [p["label"] for p in singles]
    for got, want in zip(batch, singles, strict=True):
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-6)
        assert len(got["probabilities"]) == 10


def test_integer_and_unit_scale_values_are_accepted(client: TestClient) -> None:
    """Integers and fractional values inside 0..16 are valid input."""
    body = {"instances": [list(range(16)) * 4, [0.5] * 64]}
    response = client.post("/models/logistic/predict", json=body)
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 2


def test_openapi_documents_the_predict_body_with_examples(client: TestClient) -> None:
    """Swagger UI shows the predict body schema and working examples."""
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["schema"]["properties"]) == {"instances", "pixels"}
    example = body["examples"]["batch"]["value"]
    response = client.post("/predict", json=example)
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 2


def test_openapi_predict_schema_refuses_what_the_route_refuses(client: TestClient) -> None:
    """The documented body is exactly one key, never null, rows of 64 numbers in 0..16."""
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    schema = body["schema"]
    assert schema["oneOf"] == [{"required": ["instances"]}, {"required": ["pixels"]}]
    pixels, instances = schema["properties"]["pixels"], schema["properties"]["instances"]
    assert "anyOf" not in pixels  # no null branch
    assert "anyOf" not in instances
    for row in (pixels, instances["items"]):
        assert (row["type"], row["minItems"], row["maxItems"]) == ("array", 64, 64)
        assert (row["items"]["minimum"], row["items"]["maximum"]) == (0, 16)
    assert instances["minItems"] == 1


def test_predictions_carry_the_outlier_flag_of_the_module(
    shipped_models: Path, split: Split
) -> None:
    """Every predicted row carries ``outlier`` and ``outlier_score``: a blank input and noise
    are flagged, the test digits mostly not (at most 2%), and the flag is the score over the
    threshold the manifest records."""
    threshold = (read_manifest(shipped_models / "logistic" / "1").outlier or {})["threshold"]
    noise = torch.randint(0, 17, (20, 64), generator=torch.Generator().manual_seed(0))
    rows = [[0.0] * 64, *noise.tolist(), *split.x_test.tolist()]
    with TestClient(create_app(make_settings(shipped_models))) as client:
        response = client.post("/models/logistic/predict", json={"instances": rows})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    flags = [p["outlier"] for p in predictions]
    assert all(flags[:21])
    assert sum(flags[21:]) <= 0.02 * len(split.y_test)
    for p in predictions:
        assert p["outlier"] == (p["outlier_score"] > threshold)


def test_a_version_without_an_outlier_score_answers_null_flags(tmp_path: Path) -> None:
    """An artifact exported before the outlier score still loads and answers; its rows say
    ``outlier: null`` and ``outlier_score: null``."""
    write_artifact(tmp_path, "plain", 1, torch.nn.Linear(64, 10))
    with TestClient(create_app(make_settings(tmp_path, default_model="plain"))) as client:
        response = client.post("/predict", json={"pixels": [0] * 64})
    assert response.status_code == 200, response.text
    (prediction,) = response.json()["predictions"]
    assert (prediction["outlier"], prediction["outlier_score"]) == (None, None)


def test_an_uploaded_blank_image_is_flagged(shipped_models: Path) -> None:
    """POST /predict/image carries the same flag: a blank page is not a digit."""
    import io

    from PIL import Image

    png = io.BytesIO()
    Image.new("L", (64, 64), 255).save(png, format="PNG")
    with TestClient(create_app(make_settings(shipped_models))) as client:
        response = client.post(
            "/predict/image", content=png.getvalue(), headers={"Content-Type": "image/png"}
        )
    assert response.status_code == 200, response.text
    (prediction,) = response.json()["predictions"]
    assert prediction["outlier"] is True
    assert prediction["outlier_score"] > 0
