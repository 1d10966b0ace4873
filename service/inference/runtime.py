"""The runtime interface: one model version's forward, whatever executes it.

Two runtimes serve the same artifact folder: ``runtime_torchscript`` (``model.pt`` through
``torch.jit``, CPU or CUDA) and ``runtime_onnx`` (``model.onnx`` through ONNX Runtime, CPU).
Each loads from a version folder (both files sha256-checked against the manifest first: a
version with either modified is refused whichever runtime serves it), answers a float32
(N, 64) batch with the (N, 11) array of class probabilities and outlier score (NaN without
one), and describes itself (the warm-up forwards are ``LoadedModel.warm_up``'s). Nothing
above this module (the data plane, the batcher, the shadow scorer, the gate, ``/v2``) knows
which one runs.

``DIGITS_RUNTIME`` (``Settings.runtime``) picks: ``auto`` serves a version with ONNX Runtime
when the device is the CPU and its manifest lists ``model.onnx``, with TorchScript otherwise
(a version exported before ONNX, or CUDA); ``torchscript`` and ``onnxruntime`` force one (a
version without ``model.onnx`` is refused under ``onnxruntime``; ``onnxruntime`` always runs
on the CPU, whatever the device).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch

from service.inference import runtime_onnx, runtime_torchscript
from training.artifacts import read_manifest, verify_all
from training.export import Manifest

RuntimeSetting = Literal["auto", "torchscript", "onnxruntime"]
RUNTIME_SETTINGS: tuple[RuntimeSetting, ...] = ("auto", "torchscript", "onnxruntime")


class Runtime(Protocol):
    """One model version loaded in one runtime, ready to answer."""

    @property
    def name(self) -> str:
        """``torchscript`` or ``onnxruntime``."""
        ...

    @property
    def platform(self) -> str:
        """Triton's name of the model's format: ``pytorch_torchscript``, ``onnxruntime_onnx``."""
        ...

    @property
    def device(self) -> torch.device:
        """Where its forward runs."""
        ...

    @property
    def outlier_threshold(self) -> float | None:
        """The threshold of the outlier score, ``None`` for a version without one."""
        ...

    def forward(self, rows: np.ndarray) -> np.ndarray:
        """(N, 11) float32 on the CPU for float32 ``rows`` (N, 64): the class probabilities
        and, as the last column, the outlier score of each row (NaN without one)."""
        ...

    def describe(self) -> dict[str, str]:
        """Name, platform, device, file and library version, for logs and metadata."""
        ...


class Loader(Protocol):
    """How a runtime module loads a version: ``load(folder, manifest, device, threads)``,
    the file it reads checked against ``manifest`` (``ArtifactError`` if it cannot)."""

    def __call__(
        self, folder: Path, manifest: Manifest, device: torch.device, threads: int
    ) -> Runtime: ...


def choose(setting: RuntimeSetting, manifest: Manifest, device: torch.device) -> str:
    """The runtime that serves a version under ``setting``: see the module docstring."""
    if setting != "auto":
        return setting
    if device.type == "cpu" and manifest.onnx is not None:
        return "onnxruntime"
    return "torchscript"


LOADERS: dict[str, Loader] = {
    runtime_torchscript.NAME: runtime_torchscript.load,
    runtime_onnx.NAME: runtime_onnx.load,
}


def open_runtime(
    folder: Path, setting: RuntimeSetting, device: torch.device, threads: int = 1
) -> tuple[Manifest, Runtime]:
    """Read ``folder``'s manifest and load the version in the runtime ``setting`` picks
    (``ArtifactError`` when a file it lists is missing or modified, whichever runtime reads
    it, or the file the runtime reads is not loadable)."""
    manifest = read_manifest(folder)
    verify_all(folder, manifest)
    return manifest, LOADERS[choose(setting, manifest, device)](folder, manifest, device, threads)
