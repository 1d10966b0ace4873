"""Raw HTTP against a real uvicorn: every fault of a /v2 request is answered as the Open
Inference Protocol says, ``{"error": "<message>"}`` naming the fault (400 for the request's
faults, 404 for an unknown model or version), never a 500; and the datatypes, layouts and
binary forms the protocol allows are accepted."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import make_settings
from tests.service.test_http_edges import live_server

MAX_ROWS = 4
ZERO = [0] * 64


@pytest.fixture(scope="module")
def http(
    tmp_path_factory: pytest.TempPathFactory, tiny_models: Path, serving_runtime: str
) -> Iterator[httpx.Client]:
    """An HTTP client on the app served by uvicorn (``max_rows`` 4), under ``serving_runtime``."""
    models = tmp_path_factory.mktemp("v2-errors") / "models"
    shutil.copytree(tiny_models, models)
    with (
        live_server(make_settings(models, max_rows=MAX_ROWS)) as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
    ):
        yield client


def tensor(**fields: Any) -> dict[str, Any]:
    """The ``pixels`` input of one zero row, with ``fields`` replacing or adding keys."""
    return {"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": ZERO, **fields}


def request(*inputs: dict[str, Any], **fields: Any) -> bytes:
    """A JSON inference request of ``inputs`` (one zero row by default)."""
    return json.dumps({"inputs": list(inputs) or [tensor()], **fields}).encode()


def binary(header: dict[str, Any], data: bytes, length: int | None = None) -> dict[str, Any]:
    """``httpx`` arguments of a binary request: the JSON header, then ``data``."""
    head = json.dumps(header).encode()
    size = str(len(head) if length is None else length)
    return {
        "content": head + data,
        "headers": {
            "Inference-Header-Content-Length": size,
            "Content-Type": "application/octet-stream",
        },
    }


def binary_input(
    data: bytes, datatype: str = "FP32", rows: int = 1, size: int | None = None
) -> dict[str, Any]:
    """A binary request of one input whose announced size is ``size`` (default: exact)."""
    params = {"binary_data_size": len(data) if size is None else size}
    header = {
        "inputs": [
            {"name": "pixels", "shape": [rows, 64], "datatype": datatype, "parameters": params}
        ]
    }
    return binary(header, data)


def raw(data: bytes) -> dict[str, Any]:
    """``httpx`` arguments of a raw binary request: no JSON header, the body is the data."""
    return {"content": data, "headers": {"Inference-Header-Content-Length": "0"}}


F32_ROW = np.zeros(64, "<f4").tobytes()
NAN_ROW = np.full(64, np.nan, "<f4").tobytes()
NEGATIVE_ROW = np.full(64, -1, "<f4").tobytes()
JSON_HEADERS = {"Content-Type": "application/json"}
INFER = "/v2/models/logistic/infer"

CASES = [
    # shape, datatype, data
    pytest.param(
        request(tensor(shape=[1, 63], data=ZERO[:63])),
        "shape [1, 63] does not match the model's [-1, 64]",
        id="shape-63",
    ),
    pytest.param(request(tensor(shape=[1, 8, 8])), "shape [1, 8, 8] does not match", id="shape-3d"),
    pytest.param(
        request(tensor(shape=["1", 64])), "'shape' must be a list of integers", id="shape-strings"
    ),
    pytest.param(request(tensor(shape=[0, 64], data=[])), "holds no rows", id="shape-empty"),
    pytest.param(
        request(tensor(shape=[2, 64])),
        "'data' holds 64 values, but shape [2, 64] takes 128",
        id="data-length",
    ),
    pytest.param(
        request(tensor(datatype="BYTES")), "datatype 'BYTES' is not accepted", id="datatype-bytes"
    ),
    pytest.param(
        request(tensor(datatype="BOOL")), "datatype 'BOOL' is not accepted", id="datatype-bool"
    ),
    pytest.param(
        request(tensor(datatype="FLOAT")), "datatype 'FLOAT' is not accepted", id="datatype-unknown"
    ),
    pytest.param(
        request(tensor(datatype="INT32", data=[1.5, *ZERO[1:]])),
        "datatype INT32 but 'data' holds 1.5",
        id="int-with-fraction",
    ),
    pytest.param(
        request(tensor()).replace(b"[0, 0", b"[NaN, 0", 1),
        "row 0: pixel values must be finite numbers in 0..16, got nan",
        id="nan-json",
    ),
    pytest.param(
        request(tensor(data=[255] * 64)),
        "got max 255; send raw load_digits values (0..16), not 0..255",
        id="range-0-255",
    ),
    pytest.param(
        request(tensor(data=[[0] * 64, [0] * 63 + [17]], shape=[2, 64])),
        "row 1: pixel values must be 0..16, got max 17",
        id="range-second-row",
    ),
    pytest.param(
        request(tensor(data=[*ZERO[:5], "3", *ZERO[6:]])),
        "'data' value 5 is \"3\", not a number",
        id="string-value",
    ),
    pytest.param(
        request(tensor(data=[True, *ZERO[1:]])),
        "'data' value 0 is true, not a number",
        id="bool-value",
    ),
    pytest.param(
        request(tensor(data=[None, *ZERO[1:]])),
        "'data' value 0 is null, not a number",
        id="null-value",
    ),
    pytest.param(
        request(tensor(data=[ZERO, ZERO[:63]], shape=[2, 64])), "'data' is ragged", id="ragged"
    ),
    pytest.param(
        request(tensor(data={"a": 1})), "'data' must be a list of numbers", id="data-object"
    ),
    # the request's structure
    pytest.param(b"{", "the inference request is not valid JSON", id="not-json"),
    pytest.param(b"", "the inference request is empty", id="empty-body"),
    pytest.param(b"[]", "must be a JSON object, got list", id="not-object"),
    pytest.param(
        b"{}", "'inputs' must be a list of one tensor, 'pixels'; got null", id="no-inputs"
    ),
    pytest.param(request(tensor(), tensor()), "got 2 inputs", id="two-inputs"),
    pytest.param(
        request(tensor(name="image")),
        "unknown input 'image': the model's only input is 'pixels'",
        id="input-name",
    ),
    pytest.param(
        request(outputs=[{"name": "score"}]),
        'unknown output "score": the model\'s outputs are probabilities, label',
        id="output-name",
    ),
    pytest.param(
        request(outputs=[{"name": "label"}, {"name": "label"}]),
        "output 'label' is asked for twice",
        id="output-twice",
    ),
    pytest.param(
        request(outputs=[{"name": "label", "parameters": {"binary_data": "yes"}}]),
        'binary_data must be true or false, got "yes"',
        id="binary-data-not-bool",
    ),
    pytest.param(
        request(outputs=[{"name": "label", "parameters": {"classification": 3}}]),
        "classification extension is not supported",
        id="classification",
    ),
    pytest.param(
        request(parameters={"binary_data_output": 1}),
        "binary_data_output must be true or false, got 1",
        id="binary-output-not-bool",
    ),
    pytest.param(
        request(parameters=[]), "'parameters' must be an object, got list", id="parameters-list"
    ),
    pytest.param(request(id=42), "'id' must be a string, got 42", id="id-number"),
]


@pytest.mark.parametrize(("body", "message"), CASES)
def test_a_bad_json_request_is_a_400_naming_the_fault(
    http: httpx.Client, body: bytes, message: str
) -> None:
    """The protocol's error object (plus the request's id, as every error body), 400, and a
    message that names what is wrong."""
    answer = http.post(INFER, content=body, headers=JSON_HEADERS)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/json"
    error = answer.json()
    assert list(error) == ["error", "request_id"]
    assert error["request_id"] == answer.headers["x-request-id"]
    assert isinstance(error["error"], str)
    assert message in error["error"]


BINARY_CASES = [
    pytest.param(
        binary(json.loads(request()), b"", length=10_000),
        "Inference-Header-Content-Length 10000 is beyond the body, which has",
        id="header-beyond-body",
    ),
    pytest.param(
        binary_input(NAN_ROW),
        "row 0: pixel values must be finite numbers in 0..16, got nan",
        id="nan-binary",
    ),
    pytest.param(
        binary_input(NEGATIVE_ROW),
        "row 0: pixel values must be 0..16, got min -1",
        id="negative-binary",
    ),
    pytest.param(
        binary_input(F32_ROW, size=100),
        "binary_data_size is 100 bytes, but shape [1, 64] of FP32 takes 256 bytes",
        id="size-vs-shape",
    ),
    pytest.param(
        binary_input(F32_ROW[:128], size=256),
        "binary_data_size 256 is beyond the body, which holds 128 bytes after the JSON header",
        id="size-beyond-body",
    ),
    pytest.param(
        binary_input(F32_ROW + b"\0\0\0\0", size=256),
        "the body holds 4 bytes more than the inputs' binary_data_size",
        id="extra-bytes",
    ),
    pytest.param(
        binary_input(F32_ROW, datatype="FP64"),
        "binary_data_size is 256 bytes, but shape [1, 64] of FP64 takes 512 bytes",
        id="fp64-size",
    ),
    pytest.param(
        binary(json.loads(request()), F32_ROW),
        "the body holds 256 bytes after the JSON header but input 'pixels' announces no "
        "binary_data_size",
        id="unannounced-bytes",
    ),
    pytest.param(
        binary({"inputs": [tensor(parameters={"binary_data_size": 256})]}, F32_ROW),
        "both 'data' and a binary_data_size",
        id="data-and-binary",
    ),
    pytest.param(
        binary({"inputs": [tensor(parameters={"binary_data_size": -1})]}, b""),
        "binary_data_size must be a byte count, got -1",
        id="negative-size",
    ),
    pytest.param(
        raw(F32_ROW[:100]),
        "must hold whole FP32 rows of 256 bytes, got 100 bytes",
        id="raw-binary-length",
    ),
    pytest.param(
        {"content": request(), "headers": {"Inference-Header-Content-Length": "ten"}},
        "Inference-Header-Content-Length: 'ten' is not an integer",
        id="header-length-text",
    ),
]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_neither_json_nor_binary_is_a_415(
    http: httpx.Client, content_type: str
) -> None:
    """What a form can send: refused by the access layer before the route, naming what the
    infer routes take."""
    answer = http.post(INFER, content=request(), headers={"Content-Type": content_type})
    assert answer.status_code == 415, answer.text
    assert "application/octet-stream" in answer.json()["error"]["expected"]


@pytest.mark.parametrize(("kwargs", "message"), BINARY_CASES)
def test_a_bad_binary_request_is_a_400_naming_the_fault(
    http: httpx.Client, kwargs: dict[str, Any], message: str
) -> None:
    """Header lengths, binary sizes, binary values and media types: 400 naming the fault."""
    answer = http.post(INFER, **kwargs)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["error"]


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        pytest.param(
            "POST",
            "/v2/models/svm/infer",
            404,
            "no model named 'svm'; one of: cnn, fnn, logistic",
            id="infer-model",
        ),
        pytest.param(
            "POST",
            "/v2/models/cnn/versions/9/infer",
            404,
            "model 'cnn' has no version 9; one of: 1",
            id="infer-version",
        ),
        pytest.param(
            "POST",
            "/v2/models/cnn/versions/v1/infer",
            404,
            "model 'cnn' has no version 'v1'; one of: 1",
            id="infer-version-text",
        ),
        pytest.param("GET", "/v2/models/svm", 404, "no model named 'svm'", id="metadata-model"),
        pytest.param(
            "GET",
            "/v2/models/cnn/versions/0",
            404,
            "model 'cnn' has no version '0'",
            id="metadata-version-0",
        ),
        pytest.param("GET", "/v2/models/svm/ready", 404, "no model named 'svm'", id="ready-model"),
        pytest.param(
            "POST", "/v2/repository/models/svm/load", 404, "no model named 'svm'", id="load-model"
        ),
        pytest.param(
            "POST",
            "/v2/repository/models/svm/unload",
            404,
            "no model named 'svm'",
            id="unload-model",
        ),
    ],
)
def test_an_unknown_model_or_version_is_a_404(
    http: httpx.Client, method: str, path: str, status: int, message: str
) -> None:
    """404 with the protocol's error object, listing what exists."""
    answer = http.request(method, path, content=request(), headers=JSON_HEADERS)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]


def test_more_rows_than_max_rows_is_a_413(http: httpx.Client) -> None:
    """A batch over ``max_rows`` is refused before any forward, naming the limit."""
    body = request(tensor(shape=[MAX_ROWS + 1, 64], data=ZERO * (MAX_ROWS + 1)))
    answer = http.post(INFER, content=body, headers=JSON_HEADERS)
    assert answer.status_code == 413
    assert answer.json() == {
        "error": "input 'pixels': 5 rows, at most 4 rows per request; "
        "at most 4 rows; split larger batches",
        "request_id": answer.headers["x-request-id"],
    }


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        pytest.param(
            "/v2/repository/index",
            b'{"ready": "yes"}',
            "'ready' must be true or false",
            id="index-ready",
        ),
        pytest.param("/v2/repository/index", b"{", "not valid JSON", id="index-json"),
        pytest.param(
            "/v2/repository/models/cnn/load",
            b'{"parameters": {"config": "{}"}}',
            "load takes no 'config' or 'file:' parameters",
            id="load-config",
        ),
        pytest.param(
            "/v2/repository/models/cnn/load",
            b'{"parameters": {"file:1/model.pt": "AA=="}}',
            "load takes no 'config' or 'file:' parameters",
            id="load-file",
        ),
        pytest.param(
            "/v2/repository/models/cnn/unload",
            b"[1]",
            "must be a JSON object, got list",
            id="unload-list",
        ),
    ],
)
def test_a_bad_repository_request_is_a_400(
    http: httpx.Client, path: str, body: bytes, message: str
) -> None:
    """The repository routes answer their faults the same way."""
    answer = http.post(path, content=body, headers=JSON_HEADERS)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["error"]


def _labels(http: httpx.Client, rows: np.ndarray) -> list[int]:
    answer = http.post("/models/logistic/predict", json={"instances": rows.tolist()})
    return [p["label"] for p in answer.json()["predictions"]]


ROWS = np.array([[(i * 7 + j) % 17 for j in range(64)] for i in range(3)], dtype=np.int64)


@pytest.mark.parametrize("datatype", ["UINT8", "INT16", "INT64", "FP16", "FP32", "FP64"])
def test_binary_datatypes_are_converted(http: httpx.Client, datatype: str) -> None:
    """Integer and float binary inputs give the labels of the same rows as JSON /predict."""
    dtype = {"UINT8": "u1", "INT16": "<i2", "INT64": "<i8", "FP16": "<f2"}.get(
        datatype, "<f4" if datatype == "FP32" else "<f8"
    )
    answer = http.post(INFER, **binary_input(ROWS.astype(dtype).tobytes(), datatype, rows=3))
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][1]["data"] == _labels(http, ROWS)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(ROWS.ravel().tolist(), id="flat"),
        pytest.param(ROWS.tolist(), id="nested"),
        pytest.param(ROWS.reshape(3, 8, 8).tolist(), id="nested-8x8"),
        pytest.param((ROWS.ravel() + 0.0).tolist(), id="floats"),
    ],
)
def test_json_data_flat_or_nested(http: httpx.Client, data: list[Any]) -> None:
    """JSON data flat or nested in row-major order, integers or floats: the same labels."""
    body = request(tensor(shape=[3, 64], data=data, datatype="INT32"))
    answer = http.post(INFER, content=body, headers=JSON_HEADERS)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][1]["data"] == _labels(http, ROWS)


def test_raw_binary_request_answers_in_binary(http: httpx.Client) -> None:
    """``Inference-Header-Content-Length: 0``: the body is FP32 rows; every output binary."""
    data = ROWS.astype("<f4").tobytes()
    answer = http.post(INFER, **raw(data))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/octet-stream"
    length = int(answer.headers["inference-header-content-length"])
    header = json.loads(answer.content[:length])
    sizes = [o["parameters"]["binary_data_size"] for o in header["outputs"]]
    assert sizes == [3 * 10 * 4, 3 * 8]
    labels = np.frombuffer(answer.content[length + sizes[0] :], "<i8")
    assert labels.tolist() == _labels(http, ROWS)
    assert len(answer.content) == length + sum(sizes)


def test_an_output_parameter_overrides_binary_data_output(http: httpx.Client) -> None:
    """``binary_data_output: true`` with ``binary_data: false`` on ``label``: probabilities
    come back binary, the label as JSON data, in the order asked."""
    outputs = [{"name": "label", "parameters": {"binary_data": False}}, {"name": "probabilities"}]
    body = request(outputs=outputs, parameters={"binary_data_output": True}, id="x")
    answer = http.post(INFER, content=body, headers=JSON_HEADERS)
    length = int(answer.headers["inference-header-content-length"])
    header = json.loads(answer.content[:length])
    assert header["id"] == "x"
    assert [o["name"] for o in header["outputs"]] == ["label", "probabilities"]
    assert "data" in header["outputs"][0]
    assert header["outputs"][1]["parameters"] == {"binary_data_size": 40}
    probabilities = np.frombuffer(answer.content[length:], "<f4")
    assert probabilities.shape == (10,)
    assert int(probabilities.argmax()) == header["outputs"][0]["data"][0]
