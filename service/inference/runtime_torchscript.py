"""The TorchScript runtime: ``model.pt`` through ``torch.jit`` on the CPU or a CUDA device.

``forward`` is one call of the module's ``forward_scored`` (logits and outlier score; plain
``forward`` for a version without one), the softmax, and the (N, 11) array on the CPU.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import torch

from training.artifacts import load_module
from training.contract import MODEL_FILE, Manifest
from training.onnx_export import threshold_of

NAME = "torchscript"
PLATFORM = "pytorch_torchscript"
#: The intra-op thread count torch was given in each thread that runs forwards: torch's
#: setting is per thread under OpenMP, so the forward thread sets it once, itself.
_THREADS = threading.local()


def _set_threads(threads: int) -> None:
    if getattr(_THREADS, "count", None) != threads:
        torch.set_num_threads(threads)
        _THREADS.count = threads


class TorchScriptRuntime:
    """A TorchScript module on its device (``Runtime``)."""

    name = NAME
    platform = PLATFORM

    def __init__(self, module: torch.jit.ScriptModule, device: str, threads: int = 1) -> None:
        self.module = module
        self._device = device
        self._threshold = threshold_of(module)
        self._threads = threads

    @property
    def device(self) -> str:
        return self._device

    @property
    def outlier_threshold(self) -> float | None:
        return self._threshold

    def forward(self, rows: np.ndarray) -> np.ndarray:
        _set_threads(self._threads)
        with torch.inference_mode():
            x = torch.from_numpy(rows).to(self._device, non_blocking=True)
            if self._threshold is None:
                logits = self.module(x)
                score = torch.full((len(x),), math.nan, device=x.device)
            else:
                logits, score = self.module.forward_scored(x)
            probabilities = torch.softmax(logits, dim=1)
            scored = torch.cat([probabilities, score.unsqueeze(1).to(probabilities.dtype)], 1)
            out: np.ndarray = scored.cpu().numpy()
            return out

    def describe(self) -> dict[str, str]:
        return {
            "runtime": NAME,
            "platform": PLATFORM,
            "device": str(self._device),
            "file": MODEL_FILE,
            "version": torch.__version__,
        }


def load(folder: Path, manifest: Manifest, device: str, threads: int) -> TorchScriptRuntime:
    """``model.pt`` of ``folder`` (sha256 checked against ``manifest``) on ``device``, its
    forwards on ``threads`` intra-op threads."""
    return TorchScriptRuntime(load_module(folder, manifest, device), device, threads)
