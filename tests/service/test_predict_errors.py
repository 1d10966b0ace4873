"""Every bad input gets a 4xx in the error envelope that names the problem, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.http.app import create_app
from tests.conftest import make_settings

ZEROS = [0] * 64


def _with(index: int, value: object) -> list[object]:
    row: list[object] = list(ZEROS)
    row[index] = value
    return row


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"pixels": [0] * 63}, "pixels: expected 64 values, got 63", id="63-values"),
        pytest.param({"pixels": [0] * 65}, "pixels: expected 64 values, got 65", id="65-values"),
        pytest.param(
            {"instances": [ZEROS, ZEROS, ZEROS, [255] * 64]},
            "instances[3]: pixel values must be 0..16, got max 255",
            id="scale-0-255",
        ),
        pytest.param({"pixels": _with(5, -1)}, "got min -1", id="negative"),
        pytest.param(
            {"pixels": _with(7, "3")}, 'pixels[7]: expected a number, got "3"', id="string"
        ),
        pytest.param(
            {"pixels": _with(0, True)}, "pixels[0]: expected a number, got true", id="bool"
        ),
        pytest.param({"pixels": _with(0, None)}, "expected a number, got null", id="null"),
        pytest.param(
            {"instances": [ZEROS, [0] * 10]}, "instances[1]: expected 64 values", id="ragged"
        ),
        pytest.param({"instances": [ZEROS, 5]}, "instances[1]: expected a list", id="row-not-list"),
        pytest.param({"instances": []}, "instances: expected a non-empty list", id="empty-batch"),
        pytest.param({}, "exactly one of the keys 'instances' or 'pixels'", id="neither-key"),
        pytest.param(
            {"pixels": ZEROS, "instances": [ZEROS]}, "exactly one of the keys", id="both-keys"
        ),
        pytest.param([ZEROS], "exactly one of the keys", id="bare-list"),
    ],
)
def test_predict_rejects_bad_values(client: TestClient, body: object, message: str) -> None:
    """A body that is not rows of 64 numbers in 0..16 gets a 422 naming the row and field."""
    response = client.post("/predict", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert message in error["message"]
    assert error["expected"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(
            b'{"instances": [[0' + b",0" * 63 + b"], [NaN" + b",0" * 63 + b"]]}",
            "instances[1]: pixel values must be finite numbers in 0..16, got nan",
            id="nan",
        ),
        pytest.param(b'{"pixels": [Infinity' + b",0" * 63 + b"]}", "got inf", id="infinity"),
        pytest.param(b'{"pixels": [1e400' + b",0" * 63 + b"]}", "got inf", id="overflow"),
        pytest.param(
            b'{"pixels": [1' + b"0" * 400 + b",0" * 63 + b"]}",
            "pixels[0]: pixel values must be finite numbers in 0..16, got an integer of",
            id="integer-beyond-float64",
        ),
        pytest.param(b'{"pixels": [0, 0', "not valid JSON", id="malformed-json"),
        pytest.param(b"", "the request body is empty", id="empty-body"),
        pytest.param(b"[" * 5000 + b"]" * 5000, "not valid JSON", id="deep-nesting"),
    ],
)
def test_predict_rejects_bad_json(client: TestClient, raw: bytes, message: str) -> None:
    """Non-finite numbers and broken JSON get a 422 in the envelope, not a 500."""
    response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert message in error["message"]


@pytest.fixture
def small_client(models_dir: Path) -> Iterator[TestClient]:
    """A client whose limits are small: 2 rows, 2 KiB bodies."""
    settings = make_settings(models_dir, max_rows=2, max_body_bytes=2048)
    with TestClient(create_app(settings)) as client:
        yield client


def test_predict_refuses_more_rows_than_max_rows(small_client: TestClient) -> None:
    """More rows than DIGITS_MAX_ROWS get a 413 stating the limit."""
    response = small_client.post("/predict", json={"instances": [[0] * 64] * 3})
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert "3 rows, at most 2 rows per request" in error["message"]


def test_predict_refuses_a_body_over_the_limit_by_content_length(small_client: TestClient) -> None:
    """A Content-Length over DIGITS_MAX_BODY_BYTES gets a 413 before the body is read."""
    response = small_client.post("/predict", content=b" " * 4096)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert "the limit is 2048 bytes" in error["message"]


def test_predict_refuses_a_streamed_body_over_the_limit(small_client: TestClient) -> None:
    """A chunked body without Content-Length is cut off once it passes the limit."""

    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b" " * 512

    response = small_client.post("/predict", content=chunks())
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_unknown_model_is_404_listing_the_models(client: TestClient) -> None:
    """An unknown model name gets a 404 whose `expected` lists the loaded models."""
    response = client.post("/models/resnet/predict", json={"pixels": ZEROS})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found"
    assert "'resnet'" in error["message"]
    assert error["expected"] == "one of: cnn, fnn, logistic"


def test_unknown_version_is_404_listing_the_versions(client: TestClient) -> None:
    """An unknown version gets a 404 whose `expected` lists the versions that exist."""
    response = client.post("/models/cnn/predict?version=7", json={"pixels": ZEROS})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "version_not_found"
    assert "no version 7" in error["message"]
    assert error["expected"] == "one of: 1"


@pytest.mark.parametrize("version", ["x", "0", "-1", "1_0", "\u0661", "1.0"])
def test_bad_version_query_is_422(client: TestClient, version: str) -> None:
    """A version that is not a positive integer gets a 422 naming the query parameter."""
    response = client.post(f"/models/cnn/predict?version={version}", json={"pixels": ZEROS})
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("query.version")
