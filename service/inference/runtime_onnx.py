"""The ONNX Runtime runtime: ``model.onnx`` through an ``onnxruntime.InferenceSession`` on the
CPU execution provider.

The graph (``training.onnx_export``) answers ``probabilities`` (N, 10) and ``score`` (N,) in
one run; the outlier threshold is read from its metadata. Session options: ``threads``
intra-op threads (``DIGITS_TORCH_THREADS``, as torch gets), one inter-op thread and
sequential execution (the service runs one forward at a time per device), every graph
optimisation, and no spinning of idle pool threads (they would burn cores the event loop and
other processes need between requests).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from training.contract import (
    INPUT_NAME,
    ONNX_FILE,
    OUTPUT_NAMES,
    THRESHOLD_KEY,
    ArtifactError,
    Manifest,
    onnx_bytes,
)

NAME = "onnxruntime"
PLATFORM = "onnxruntime_onnx"
PROVIDER = "CPUExecutionProvider"


class OnnxRuntime:
    """An ONNX Runtime session on the CPU (``Runtime``)."""

    name = NAME
    platform = PLATFORM

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        meta = session.get_modelmeta().custom_metadata_map
        self._threshold = float(meta[THRESHOLD_KEY]) if THRESHOLD_KEY in meta else None
        self._outputs = list(OUTPUT_NAMES)

    @property
    def device(self) -> str:
        return "cpu"

    @property
    def outlier_threshold(self) -> float | None:
        return self._threshold

    def forward(self, rows: np.ndarray) -> np.ndarray:
        probabilities, score = self.session.run(self._outputs, {INPUT_NAME: rows})
        return np.concatenate([probabilities, score[:, None]], axis=1)

    def describe(self) -> dict[str, str]:
        return {
            "runtime": NAME,
            "platform": PLATFORM,
            "device": "cpu",
            "file": ONNX_FILE,
            "version": ort.__version__,
        }


def session_options(threads: int) -> ort.SessionOptions:
    """The options of every session: see the module docstring."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    return options


def load(folder: Path, manifest: Manifest, device: str, threads: int) -> OnnxRuntime:
    """``model.onnx`` of ``folder`` (sha256 checked against ``manifest``) in a CPU session
    with ``threads`` intra-op threads; ``device`` is not used (ONNX Runtime runs on the CPU
    here)."""
    del device
    graph = onnx_bytes(folder, manifest)
    path = Path(folder) / ONNX_FILE
    try:
        session = ort.InferenceSession(graph, session_options(threads), providers=[PROVIDER])
    except Exception as exc:  # onnxruntime's own exception types: any failure to load
        raise ArtifactError(f"{path} is not a loadable ONNX model: {exc}") from None
    names = ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
    if names != ([INPUT_NAME], list(OUTPUT_NAMES)):
        raise ArtifactError(
            f"{path} has inputs {names[0]} and outputs {names[1]}, expected "
            f"[{INPUT_NAME!r}] and {list(OUTPUT_NAMES)}"
        )
    return OnnxRuntime(session)
