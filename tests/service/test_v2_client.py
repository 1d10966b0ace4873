"""Triton's own client, ``tritonclient.http``, against ``python -m service`` in a process of its
own: the Open Inference Protocol routes and the binary tensor data extension work unchanged."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.conftest import SHIPPED_MODELS
from tests.service.live import LiveService, running_service
from training.contract import read_manifest
from training.data import Split

FAMILIES = ("logistic", "fnn", "cnn")
PLATFORMS = {"torchscript": "pytorch_torchscript", "onnxruntime": "onnxruntime_onnx"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, serving_runtime: str) -> Iterator[LiveService]:
    """The service on a private copy of the shipped models, under ``serving_runtime``."""
    workdir = tmp_path_factory.mktemp("v2-client")
    shutil.copytree(SHIPPED_MODELS, workdir / "models")
    with running_service(workdir / "models", workdir) as service:
        yield service


@pytest.fixture(scope="module")
def client(live: LiveService) -> Iterator[triton.InferenceServerClient]:
    """A Triton HTTP client on the service, as a Triton user would make one."""
    triton_client = triton.InferenceServerClient(url=live.url.removeprefix("http://"))
    yield triton_client
    triton_client.close()


def _inputs(rows: np.ndarray, *, binary: bool) -> list[triton.InferInput]:
    tensor = triton.InferInput("pixels", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows.astype(np.float32), binary_data=binary)
    return [tensor]


def _predict(live: LiveService, model: str, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The same rows through ``POST /models/{model}/predict``."""
    answer = httpx.post(
        f"{live.url}/models/{model}/predict", json={"instances": rows.tolist()}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    return {
        "label": np.array([p["label"] for p in predictions]),
        "probabilities": np.array([p["probabilities"] for p in predictions], dtype=np.float32),
    }


def test_server_and_models_are_live_and_ready(client: triton.InferenceServerClient) -> None:
    """The health routes answer as Triton's do: 200 while live and ready."""
    assert client.is_server_live()
    assert client.is_server_ready()
    for family in FAMILIES:
        assert client.is_model_ready(family)
        assert client.is_model_ready(family, "1")
    assert not client.is_model_ready("cnn", "7")


def test_server_metadata_names_the_extensions(client: triton.InferenceServerClient) -> None:
    """The server metadata lists the binary tensor data and model repository extensions."""
    metadata = client.get_server_metadata()
    assert metadata["name"] == "digits-serve"
    assert {"binary_tensor_data", "model_repository"} <= set(metadata["extensions"])


@pytest.mark.parametrize("version", ["", "1"])
def test_model_metadata_describes_the_tensors(
    client: triton.InferenceServerClient, version: str, serving_runtime: str
) -> None:
    """Input ``pixels`` FP32 [-1, 64]; outputs ``probabilities`` FP32 [-1, 10], ``label``
    INT64 [-1], ``outlier`` BOOL [-1] and ``outlier_score`` FP32 [-1] with the threshold; the
    platform of the runtime that serves it (Triton's names) and the versions."""
    metadata = client.get_model_metadata("fnn", version)
    assert metadata["name"] == "fnn"
    assert metadata["versions"] == ["1"]
    assert metadata["platform"] == PLATFORMS[serving_runtime]
    assert metadata["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}]
    assert metadata["outputs"] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
        {"name": "label", "datatype": "INT64", "shape": [-1]},
        {"name": "outlier", "datatype": "BOOL", "shape": [-1]},
        {"name": "outlier_score", "datatype": "FP32", "shape": [-1]},
    ]
    threshold = metadata["parameters"]["outlier_threshold"]
    recorded = read_manifest(SHIPPED_MODELS / "fnn" / "1").outlier or {}
    assert threshold == pytest.approx(recorded["threshold"], abs=1e-3)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_flags_a_blank_input_and_not_a_digit(
    client: triton.InferenceServerClient, split: Split, binary: bool
) -> None:
    """The ``outlier`` and ``outlier_score`` outputs, binary or JSON: a blank row is flagged,
    a test digit is not, and the flag is the score over the metadata's threshold."""
    rows = np.stack([np.zeros(64, dtype=np.float32), split.x_test[0].numpy()])
    pixels = triton.InferInput("pixels", list(rows.shape), "FP32")
    pixels.set_data_from_numpy(rows, binary_data=binary)
    outputs = [
        triton.InferRequestedOutput(n, binary_data=binary) for n in ("outlier", "outlier_score")
    ]
    result = client.infer("fnn", [pixels], outputs=outputs)
    flags, scores = result.as_numpy("outlier"), result.as_numpy("outlier_score")
    threshold = client.get_model_metadata("fnn")["parameters"]["outlier_threshold"]
    assert flags.tolist() == [True, False]
    assert (scores > threshold).tolist() == [True, False]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_answers_what_predict_answers(
    client: triton.InferenceServerClient,
    live: LiveService,
    split: Split,
    binary: bool,
    serving_runtime: str,
) -> None:
    """Inputs and outputs as binary data (tritonclient's default) or as JSON: the labels and
    probabilities of /predict, the request id echoed and the runtime that ran it named."""
    rows = split.x_test[:5].numpy()
    outputs = [
        triton.InferRequestedOutput(n, binary_data=binary) for n in ("probabilities", "label")
    ]
    result = client.infer("cnn", _inputs(rows, binary=binary), outputs=outputs, request_id="req-7")
    response = result.get_response()
    assert response["id"] == "req-7"
    assert response["model_name"] == "cnn"
    assert response["model_version"] == "1"
    assert response["parameters"] == {"runtime": serving_runtime}
    assert [("binary_data_size" in o.get("parameters", {})) for o in response["outputs"]] == [
        binary,
        binary,
    ]
    expected = _predict(live, "cnn", rows)
    labels, probabilities = result.as_numpy("label"), result.as_numpy("probabilities")
    assert labels.dtype == np.int64
    assert probabilities.dtype == np.float32
    assert labels.tolist() == expected["label"].tolist()
    np.testing.assert_allclose(probabilities, expected["probabilities"], rtol=1e-6)


def test_outputs_asked_for_are_the_only_ones_returned(
    client: triton.InferenceServerClient, split: Split
) -> None:
    """Asking for ``label`` alone returns no probabilities."""
    rows = split.x_test[:3].numpy()
    outputs = [triton.InferRequestedOutput("label")]
    result = client.infer("logistic", _inputs(rows, binary=True), outputs=outputs)
    assert [o["name"] for o in result.get_response()["outputs"]] == ["label"]
    assert result.as_numpy("probabilities") is None
    assert result.as_numpy("label").shape == (3,)


def test_a_version_path_answers_with_that_version(
    client: triton.InferenceServerClient, split: Split
) -> None:
    """``/versions/1/infer`` answers with version 1; an unknown version is a 404."""
    rows = split.x_test[:2].numpy()
    result = client.infer("fnn", _inputs(rows, binary=True), model_version="1")
    assert result.get_response()["model_version"] == "1"
    with pytest.raises(InferenceServerException) as missing:
        client.infer("fnn", _inputs(rows, binary=True), model_version="9")
    assert missing.value.status() == "404"
    assert "no version 9" in missing.value.message()


def test_an_unknown_model_is_a_404(client: triton.InferenceServerClient, split: Split) -> None:
    """Infer and metadata on a model that does not exist: 404 naming those that do."""
    rows = split.x_test[:1].numpy()
    for call in (
        lambda: client.infer("svm", _inputs(rows, binary=True)),
        lambda: client.get_model_metadata("svm"),
    ):
        with pytest.raises(InferenceServerException) as missing:
            call()
        assert missing.value.status() == "404"
        assert "no model named 'svm'" in missing.value.message()
        assert "cnn, ensemble, fnn, logistic" in missing.value.message()


def test_unload_then_load(
    client: triton.InferenceServerClient, live: LiveService, split: Split
) -> None:
    """Unloading a model makes it not ready (infer 400, /predict 503, index UNAVAILABLE) while
    the others serve; loading it brings it back."""
    rows = split.x_test[:4].numpy()
    before = client.infer("logistic", _inputs(rows, binary=True)).as_numpy("label")
    client.unload_model("logistic")
    try:
        assert not client.is_model_ready("logistic")
        ready = httpx.get(f"{live.url}/v2/models/logistic/ready")  # false is a 4xx, as Triton
        assert (ready.status_code, ready.json()) == (400, {"name": "logistic", "ready": False})
        assert client.is_server_ready()  # every model not unloaded serves
        with pytest.raises(InferenceServerException) as unloaded:
            client.infer("logistic", _inputs(rows, binary=True))
        assert unloaded.value.status() == "400"
        assert "unloaded" in unloaded.value.message()
        predict = httpx.post(f"{live.url}/models/logistic/predict", json={"pixels": [0] * 64})
        assert predict.status_code == 503
        assert predict.json()["error"]["code"] == "model_unavailable"
        assert predict.headers["retry-after"] == "1"
        index = {e["name"]: e for e in client.get_model_repository_index()}
        assert index["logistic"]["state"] == "UNAVAILABLE"
        assert index["logistic"]["reason"] == "unloaded"
        assert index["cnn"]["state"] == "READY"
        assert client.is_model_ready("cnn")
    finally:
        client.load_model("logistic")
    assert client.is_model_ready("logistic")
    after = client.infer("logistic", _inputs(rows, binary=True)).as_numpy("label")
    assert after.tolist() == before.tolist()


@pytest.mark.parametrize("family", FAMILIES)
def test_the_lecture_test_rows_give_the_labels_of_predict(
    client: triton.InferenceServerClient, live: LiveService, split: Split, family: str
) -> None:
    """The 360 test rows of the lecture's split, in one binary request and one JSON request,
    get the same labels via /v2 as via /predict."""
    rows = split.x_test.numpy()
    assert rows.shape == (360, 64)
    expected = _predict(live, family, rows)["label"]
    for binary in (True, False):
        labels = client.infer(family, _inputs(rows, binary=binary)).as_numpy("label")
        assert labels.tolist() == expected.tolist()


def test_metrics_label_v2_requests_by_route_template(
    client: triton.InferenceServerClient, live: LiveService, split: Split
) -> None:
    """/v2 requests are counted under their route templates, like every other route."""
    client.infer("cnn", _inputs(split.x_test[:1].numpy(), binary=True), model_version="1")
    client.get_model_metadata("cnn")
    metrics = httpx.get(f"{live.url}/metrics").text
    assert 'route="/v2/models/{name}/versions/{version}/infer"' in metrics
    assert 'method="GET",route="/v2/models/{name}",status="200"' in metrics
