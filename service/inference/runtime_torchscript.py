"""The TorchScript runtime: ``model.pt`` through ``torch.jit`` on the CPU or a CUDA device.

``forward`` is one call of the module's ``forward_scored`` (logits and outlier score; plain
``forward`` for a version without one), the softmax, and the (N, 11) array on the CPU.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from training.artifacts import load_module
from training.export import MODEL_FILE, Manifest
from training.onnx_export import threshold_of

NAME = "torchscript"
PLATFORM = "pytorch_torchscript"


class TorchScriptRuntime:
    """A TorchScript module on its device (``Runtime``)."""

    name = NAME
    platform = PLATFORM

    def __init__(self, module: torch.jit.ScriptModule, device: torch.device) -> None:
        self.module = module
        self._device = device
        self._threshold = threshold_of(module)

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def outlier_threshold(self) -> float | None:
        return self._threshold

    def forward(self, rows: np.ndarray) -> np.ndarray:
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


def load(
    folder: Path, manifest: Manifest, device: torch.device, threads: int
) -> TorchScriptRuntime:
    """``model.pt`` of ``folder`` (sha256 checked against ``manifest``) on ``device``; the
    intra-op threads are torch's, set by the thread that runs the forwards."""
    del threads  # torch.set_num_threads in the forward thread (service.inference.dataplane)
    return TorchScriptRuntime(load_module(folder, manifest, device), device)
