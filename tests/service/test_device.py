"""Which device the service runs on: CUDA when there is one, else the CPU; overridable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from service.http.app import create_app
from service.inference import device
from service.inference.device import resolve_device
from tests.conftest import make_settings


@pytest.mark.parametrize(("cuda", "expected"), [(True, "cuda:0"), (False, "cpu")])
def test_auto_picks_cuda_when_available_else_cpu(
    cuda: bool, expected: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On a machine whose NVIDIA driver lists a GPU, ``auto`` resolves to CUDA when torch can
    use it and to the CPU when it cannot (the machine's answers are set here, so both cases
    run on any machine)."""
    (tmp_path / "gpus" / "0000:01:00.0").mkdir(parents=True)
    monkeypatch.setattr(device, "NVIDIA_GPUS", tmp_path / "gpus")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert resolve_device("auto") == expected


def test_a_gpu_is_seen_by_its_device_node_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A container given ``/dev/nvidia0`` but no ``/proc/driver/nvidia`` still asks torch."""
    (tmp_path / "nvidiactl").touch()
    monkeypatch.setattr(device, "NVIDIA_GPUS", tmp_path / "absent")
    monkeypatch.setattr(device, "DEVICE_NODES", tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cpu"  # nvidiactl alone is no GPU
    (tmp_path / "nvidia0").touch()
    assert resolve_device("auto") == "cuda:0"


def test_auto_without_a_gpu_never_imports_torch() -> None:
    """Without an NVIDIA GPU, ``auto`` is the CPU and torch is never imported: the API
    process that serves ONNX stays torch-free (issue 24). Run where torch cannot be imported."""
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # any import of torch now fails\n"
        "from service.inference import device\n"
        "device.NVIDIA_GPUS = device.DEVICE_NODES = device.Path('/nonexistent')\n"
        "print(device.resolve_device('auto'), device.resolve_device('cpu'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["cpu", "cpu"]


def test_explicit_cpu_is_honoured() -> None:
    """``cpu`` forces the CPU even on a GPU machine."""
    assert resolve_device("cpu") == "cpu"


def test_missing_cuda_device_fails_at_start_with_the_way_out() -> None:
    """Asking for a CUDA device the machine lacks fails at start-up, naming the fix."""
    index = torch.cuda.device_count()  # one past the last device there is
    with pytest.raises(RuntimeError, match="DIGITS_DEVICE=auto or cpu"):
        resolve_device(f"cuda:{index}")


def test_invalid_device_setting_is_refused() -> None:
    """A device name the service does not know is a settings error, not a crash later."""
    with pytest.raises(ValueError, match="auto, cpu, cuda or cuda:N"):
        make_settings(Path("models"), device="tpu")


@pytest.mark.gpu
def test_predict_runs_on_cuda(models_dir: Path) -> None:
    """On a GPU machine the default device is CUDA and predictions say so."""
    with TestClient(create_app(make_settings(models_dir, device="auto"))) as client:
        response = client.post("/models/cnn/predict", json={"pixels": [0.0] * 64})
    assert response.status_code == 200
    assert response.json()["device"].startswith("cuda")
