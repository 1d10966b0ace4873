"""``POST /models/{name}/explain``: occlusion maps, routed, guarded and refused as predict is,
and maps that mean something (the deletion test)."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from service.http.app import create_app
from service.inference.explain import area_under, deletion_curve, occlusion
from service.inference.inline import forward_of
from service.inference.loaded import LoadedModel
from service.inference.runtime_torchscript import TorchScriptRuntime
from tests.conftest import SHIPPED_MODELS, make_settings
from tests.service.conftest import write_artifact
from training.contract import MODEL_FILE, read_manifest
from training.data import Split

FAMILIES = ["logistic", "fnn", "cnn", "ensemble"]
ZEROS = [0] * 64


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app on a copy of the shipped models (the ensemble included)."""
    models = tmp_path_factory.mktemp("explain") / "models"
    shutil.copytree(SHIPPED_MODELS, models)
    with TestClient(create_app(make_settings(models))) as client:
        yield client


def _explain(client: TestClient, path: str, body: Any) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.mark.parametrize("name", FAMILIES)
def test_each_family_answers_an_8x8_map_per_row_with_predicts_label(
    shipped: TestClient, split: Split, name: str
) -> None:
    """Per row: predict's label, the probability predict gives it, an 8x8 map of floats."""
    rows = split.x_test[:5].tolist()
    body = _explain(shipped, f"/models/{name}/explain", {"instances": rows})
    predicted = _explain(shipped, f"/models/{name}/predict", {"instances": rows})["predictions"]
    assert (body["model"], body["version"], body["alias"]) == (name, "1", "production")
    assert (body["method"], body["baseline"]) == ("occlusion", 0.0)
    assert len(body["explanations"]) == len(rows)
    for row, got, want in zip(rows, body["explanations"], predicted, strict=True):
        assert got["label"] == got["target"] == want["label"]
        assert got["probability"] == pytest.approx(want["probabilities"][want["label"]], abs=1e-5)
        grid = np.array(got["attribution"], dtype=np.float64)
        assert grid.shape == (8, 8)
        assert np.isfinite(grid).all()
        assert grid.max() > 0
        # A pixel already at the baseline (0) changes nothing when occluded.
        background = np.array(row).reshape(8, 8) == 0
        assert np.abs(grid[background]).max() < 1e-6


def test_removing_the_top_pixel_lowers_the_class_probability_by_its_attribution(
    shipped: TestClient, split: Split
) -> None:
    """The map says what it measures: predict on the digit with its top-attributed pixel set
    to 0 gives p(label) lower by exactly that attribution (row-major: row r, column c is
    pixel 8 r + c)."""
    row = split.x_test[0].tolist()
    (answer,) = _explain(shipped, "/models/cnn/explain", {"pixels": row})["explanations"]
    grid = np.array(answer["attribution"])
    top = int(grid.argmax())
    r, c = divmod(top, 8)
    assert grid[r, c] > 0.01  # a real digit leans on some pixel
    occluded = list(row)
    occluded[8 * r + c] = 0
    (again,) = _explain(shipped, "/models/cnn/predict", {"pixels": occluded})["predictions"]
    dropped = again["probabilities"][answer["label"]]
    assert dropped < answer["probability"]
    assert answer["probability"] - dropped == pytest.approx(grid[r, c], abs=1e-5)


def test_a_hand_computable_model_gets_the_hand_computed_map(tmp_path: Path) -> None:
    """A Linear(64, 10) that reads class k from pixel k: with pixel 3 at 16 only pixel 3
    matters, by softmax(16 at 3) - 1/10; ``?target=5`` explains class 5 (pixel 3 lit: it
    speaks against 5)."""
    linear = torch.nn.Linear(64, 10)
    with torch.no_grad():
        linear.weight.zero_()
        linear.weight[:, :10] = torch.eye(10)
        linear.bias.zero_()
    write_artifact(tmp_path, "known", 1, linear)
    pixels = [0.0] * 64
    pixels[3] = 16.0
    p3 = math.exp(16) / (math.exp(16) + 9)
    with TestClient(create_app(make_settings(tmp_path, default_model="known"))) as client:
        (row,) = _explain(client, "/models/known/explain", {"pixels": pixels})["explanations"]
        (five,) = _explain(client, "/models/known/explain?target=5", {"pixels": pixels})[
            "explanations"
        ]
    grid = np.array(row["attribution"])
    assert (row["label"], row["target"]) == (3, 3)
    assert grid[0, 3] == pytest.approx(p3 - 0.1, abs=1e-6)
    assert np.delete(grid.ravel(), 3) == pytest.approx(0.0, abs=1e-7)
    assert (five["label"], five["target"]) == (3, 5)
    assert five["probability"] == pytest.approx((1 - p3) / 9, rel=1e-4)
    assert np.array(five["attribution"])[0, 3] == pytest.approx(five["probability"] - 0.1, 1e-4)


def test_target_explains_the_class_asked_for(shipped: TestClient, split: Split) -> None:
    """``?target=3``: every row explains class 3, with predict's probability of 3."""
    rows = split.x_test[:3].tolist()
    body = _explain(shipped, "/models/fnn/explain?target=3", {"instances": rows})
    predicted = _explain(shipped, "/models/fnn/predict", {"instances": rows})["predictions"]
    for got, want in zip(body["explanations"], predicted, strict=True):
        assert (got["target"], got["label"]) == (3, want["label"])
        assert got["probability"] == pytest.approx(want["probabilities"][3], abs=1e-5)


@pytest.mark.parametrize(
    ("query", "body", "message"),
    [
        pytest.param("?target=10", {"pixels": ZEROS}, "query.target: '10' is out of", id="10"),
        pytest.param("?target=-1", {"pixels": ZEROS}, "is out of range", id="negative"),
        pytest.param("?target=two", {"pixels": ZEROS}, "is not an integer", id="word"),
        pytest.param("", {"pixels": ZEROS, "target": 3}, "the query parameter ?target=", id="body"),
    ],
)
def test_a_bad_target_is_a_422_that_says_what_is_expected(
    shipped: TestClient, query: str, body: dict[str, Any], message: str
) -> None:
    response = shipped.post(f"/models/cnn/explain{query}", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert message in error["message"]
    assert "target" in error["expected"]


def test_more_rows_than_the_explain_limit_is_a_413(shipped: TestClient, split: Split) -> None:
    """17 rows (the default limit is 16): refused before any forward, naming the setting."""
    rows = split.x_test[:17].tolist()
    response = shipped.post("/models/cnn/explain", json={"instances": rows})
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert "17 rows, at most 16 rows per explain request" in error["message"]
    assert "DIGITS_MAX_EXPLAIN_ROWS" in error["expected"]
    assert shipped.post("/models/cnn/explain", json={"instances": rows[:16]}).status_code == 200


def test_the_explain_limit_is_the_setting(models_dir: Path) -> None:
    with TestClient(create_app(make_settings(models_dir, max_explain_rows=2))) as client:
        two = client.post("/models/logistic/explain", json={"instances": [ZEROS] * 2})
        three = client.post("/models/logistic/explain", json={"instances": [ZEROS] * 3})
    assert (two.status_code, three.status_code) == (200, 413)
    assert "at most 2 rows per explain request" in three.json()["error"]["message"]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"pixels": [0]}', id="1-value"),
        pytest.param(b'{"instances": [[0' + b",0" * 63 + b"], [255" + b",0" * 63 + b"]]}", id="x"),
        pytest.param(b'{"pixels": [NaN' + b",0" * 63 + b"]}", id="nan"),
        pytest.param(b'{"pixels": ["3"' + b",0" * 63 + b"]}", id="string"),
        pytest.param(b'{"instances": []}', id="empty-batch"),
        pytest.param(b"{}", id="neither-key"),
        pytest.param(b'{"pixels": [0, 0', id="malformed"),
        pytest.param(b"", id="empty-body"),
    ],
)
def test_a_bad_body_gets_the_answer_predict_gives(shipped: TestClient, raw: bytes) -> None:
    """Same decoder: the same status and the same error body, word for word (one request id
    for both, so that the bodies' ``request_id`` agree too)."""
    headers = {"content-type": "application/json", "X-Request-Id": "same-request"}
    explained = shipped.post("/models/cnn/explain", content=raw, headers=headers)
    predicted = shipped.post("/models/cnn/predict", content=raw, headers=headers)
    assert explained.status_code == predicted.status_code == 422
    assert explained.json() == predicted.json()


def test_routing_is_predicts(shipped: TestClient) -> None:
    """Unknown model or version: predict's 404s; ``?version=`` pins (no alias),
    ``?alias=production`` routes by the alias."""
    body = {"pixels": ZEROS}
    same = {"X-Request-Id": "same-request"}  # so that the bodies' request_id agree too
    for path in ("/models/nope/explain", "/models/cnn/explain?version=7"):
        explained, predicted = (
            shipped.post(path, json=body, headers=same),
            shipped.post(path.replace("explain", "predict"), json=body, headers=same),
        )
        assert explained.status_code == 404
        assert explained.json() == predicted.json()
    assert shipped.post("/models/nope/explain", json=body).json()["error"]["code"] == (
        "model_not_found"
    )
    pinned = _explain(shipped, "/models/cnn/explain?version=1", body)
    aliased = _explain(shipped, "/models/cnn/explain?alias=production", body)
    assert (pinned["alias"], aliased["alias"]) == (None, "production")


def test_an_unloaded_model_is_503_model_unavailable(models_dir: Path) -> None:
    with TestClient(create_app(make_settings(models_dir))) as client:
        assert client.post("/v2/repository/models/fnn/unload").status_code == 200
        response = client.post("/models/fnn/explain", json={"pixels": ZEROS})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "model_unavailable"
    assert response.headers["retry-after"] == "1"


def test_with_keys_set_explain_needs_the_read_key_as_predict(models_dir: Path) -> None:
    key = "read-key-0123456789"
    with TestClient(create_app(make_settings(models_dir, read_api_key=key))) as client:
        anonymous = client.post("/models/cnn/explain", json={"pixels": ZEROS})
        wrong = client.post(
            "/models/cnn/explain", json={"pixels": ZEROS}, headers={"X-API-Key": "x"}
        )
        keyed = client.post(
            "/models/cnn/explain", json={"pixels": ZEROS}, headers={"X-API-Key": key}
        )
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["message"] == "this route needs the read key"
    assert wrong.status_code == 403
    assert keyed.status_code == 200


def test_every_openapi_example_is_answered_200(shipped: TestClient) -> None:
    """What Swagger UI's "Try it out" sends, with the default name it shows."""
    operation = shipped.get("/openapi.json").json()["paths"]["/models/{name}/explain"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    assert examples
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert set(parameters) >= {"name", "version", "alias", "target"}
    (name,) = [e["value"] for e in parameters["name"]["examples"].values()]
    for example in examples.values():
        answer = _explain(shipped, f"/models/{name}/explain", example["value"])
        assert len(answer["explanations"]) == len(example["value"].get("instances", [0]))


def _load(name: str) -> LoadedModel:
    folder = SHIPPED_MODELS / name / "1"
    module = torch.jit.load(str(folder / MODEL_FILE), map_location="cpu")
    runtime = TorchScriptRuntime(module, "cpu")
    return LoadedModel(read_manifest(folder), runtime, folder)


@pytest.mark.parametrize("name", ["cnn", "logistic"])
def test_deleting_pixels_in_map_order_drops_the_class_faster_than_random(
    split: Split, name: str
) -> None:
    """The deletion test (bench/explain_deletion.py) on 60 test rows: setting pixels to 0 in
    the map's order (highest first) takes the predicted class's probability down much faster
    than any of 3 random orders (area under the curve less than half of theirs)."""
    forward = forward_of(_load(name))
    rows = split.x_test[:60].numpy()
    maps = occlusion(forward, rows)
    ordered = np.argsort(-maps.attributions, axis=1, kind="stable")
    mapped = area_under(deletion_curve(forward, rows, ordered, maps.labels))
    for seed in range(3):
        rng = np.random.default_rng(seed)
        shuffled = np.stack([rng.permutation(64) for _ in rows])
        random = area_under(deletion_curve(forward, rows, shuffled, maps.labels))
        assert mapped < 0.5 * random, (mapped, random)
