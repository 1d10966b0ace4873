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
on the CPU, whatever the device). A runtime's module is imported when a version is first served
by it, so a process that serves only ONNX never imports torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Literal, Protocol

import numpy as np

from training.contract import Manifest, read_manifest, verify_all

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
    def device(self) -> str:
        """Where its forward runs: ``cpu`` or ``cuda:N``."""
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

    def __call__(self, folder: Path, manifest: Manifest, device: str, threads: int) -> Runtime: ...


def choose(setting: RuntimeSetting, manifest: Manifest, device: str) -> str:
    """The runtime that serves a version under ``setting``: see the module docstring."""
    if setting != "auto":
        return setting
    if device == "cpu" and manifest.onnx is not None:
        return "onnxruntime"
    return "torchscript"


#: The module of each runtime, imported when a version is first served by it: the
#: TorchScript one imports torch, which a process serving only ONNX never loads (issue 24).
MODULES = {
    "torchscript": "service.inference.runtime_torchscript",
    "onnxruntime": "service.inference.runtime_onnx",
}


def runtime_module(name: str) -> ModuleType:
    """The module of runtime ``name`` (its ``load`` is a ``Loader``), imported on first use."""
    return importlib.import_module(MODULES[name])


def open_runtime(
    folder: Path, setting: RuntimeSetting, device: str, threads: int = 1
) -> tuple[Manifest, Runtime]:
    """Read ``folder``'s manifest and load the version in the runtime ``setting`` picks
    (``ArtifactError`` when a file it lists is missing or modified, whichever runtime reads
    it, or the file the runtime reads is not loadable)."""
    manifest = read_manifest(folder)
    verify_all(folder, manifest)
    loader: Loader = runtime_module(choose(setting, manifest, device)).load
    return manifest, loader(folder, manifest, device, threads)
