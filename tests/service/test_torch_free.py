"""The API process that serves ONNX never loads torch (issue 24): read from the running
process itself (``/proc/<pid>/maps``: every shared library it has mapped), after it has
answered every kind of request, including a training job whose fit ran in a worker process
(which does load torch) and whose new version the API then loaded and served."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import SHIPPED_MODELS
from tests.service.jobs.conftest import SHORT_LOGISTIC
from tests.service.live import LiveService, running_service

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/<pid>/maps")

ROW = [0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0] * 8


def torch_libraries(pid: int) -> set[str]:
    """The torch shared libraries process ``pid`` has mapped (``libtorch*.so``, ``libc10``)."""
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    paths = {line.split()[-1] for line in maps if len(line.split()) >= 6}
    return {p for p in paths if Path(p).name.startswith(("libtorch", "libc10"))}


def workdir(tmp_path: Path) -> Path:
    (tmp_path / "run").mkdir()
    return tmp_path / "run"


def finished_job(service: LiveService, job_id: str, timeout: float = 240.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, object] = httpx.get(f"{service.url}/train/{job_id}", timeout=5).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.5)
    pytest.fail(f"job {job_id} did not finish in {timeout} s:\n{service.output()[-3000:]}")


def test_the_onnx_serving_process_never_maps_torch(tmp_path: Path) -> None:
    """The shipped models on default settings (``DIGITS_RUNTIME=auto`` on the CPU):
    predictions, ``/v2``, an explanation, a job fitted in a worker and its version served;
    the API process maps no torch library at any point."""
    with running_service(SHIPPED_MODELS, workdir(tmp_path), {"DIGITS_RUNTIME": "auto"}) as service:
        pid = service.process.pid
        assert torch_libraries(pid) == set()
        for name in ("logistic", "fnn", "cnn", "ensemble"):
            answer = httpx.post(f"{service.url}/models/{name}/predict", json={"pixels": ROW})
            assert answer.status_code == 200, answer.text
            assert answer.json()["runtime"] == "onnxruntime"
        v2 = {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": ROW}]}
        assert httpx.post(f"{service.url}/v2/models/cnn/infer", json=v2).status_code == 200
        assert httpx.post(f"{service.url}/models/cnn/explain", json={"pixels": ROW}).is_success

        posted = httpx.post(f"{service.url}/train", json=SHORT_LOGISTIC, timeout=10)
        assert posted.status_code == 202, posted.text
        job = finished_job(service, posted.json()["id"])
        assert job["status"] == "succeeded", job
        version = job["model"]["version"]  # type: ignore[index]
        answer = httpx.post(
            f"{service.url}/models/logistic/predict?version={version}", json={"pixels": ROW}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["runtime"] == "onnxruntime"

        assert torch_libraries(pid) == set(), "the API process loaded torch"


def test_the_torchscript_runtime_does_map_torch(models_dir: Path, tmp_path: Path) -> None:
    """The probe sees torch where it is loaded: the same process under
    ``DIGITS_RUNTIME=torchscript`` maps libtorch once it serves."""
    with running_service(
        models_dir, workdir(tmp_path), {"DIGITS_RUNTIME": "torchscript"}
    ) as service:
        answer = httpx.post(f"{service.url}/models/cnn/predict", json={"pixels": ROW})
        assert answer.json()["runtime"] == "torchscript"
        assert torch_libraries(service.process.pid)


def test_an_install_without_torch_serves_and_refuses_local_training(tmp_path: Path) -> None:
    """The API install (``digits-serve[api]``: no torch, no scikit-learn) serves every shipped
    model; a ``/train`` for the local backend, which could only fail in its worker, is refused
    at once with 501 and what to do, and nothing is queued."""
    with running_service(
        SHIPPED_MODELS,
        workdir(tmp_path),
        {"DIGITS_RUNTIME": "auto"},
        without=("torch", "sklearn"),
    ) as service:
        for name in ("logistic", "fnn", "cnn", "ensemble"):
            answer = httpx.post(f"{service.url}/models/{name}/predict", json={"pixels": ROW})
            assert answer.status_code == 200, answer.text
        refused = httpx.post(f"{service.url}/train", json=SHORT_LOGISTIC, timeout=10)
        assert refused.status_code == 501, refused.text
        error = refused.json()["error"]
        assert error["code"] == "training_unavailable"
        assert "no torch" in error["message"]
        assert "DIGITS_JOB_BACKEND=celery" in error["expected"]
        assert httpx.get(f"{service.url}/train").json()["total"] == 0
        assert torch_libraries(service.process.pid) == set()
