"""ONNX export of the scripted module, beside ``model.pt``: ``model.onnx`` and its parity check.

The graph is exported from the very TorchScript module saved as ``model.pt`` (same weights,
the temperature already folded in), by torch's TorchScript-based exporter (``dynamo=False``):
the dynamo exporter takes only an eager ``nn.Module``, not a ``ScriptModule``, so it could not
re-export a shipped ``model.pt`` (``python -m training.reexport``). Opset ``OPSET``, one input
``input`` float32 (batch, 64) with a dynamic batch axis, two outputs:

- ``probabilities`` float32 (batch, 10): the softmax of the module's (calibrated) logits;
- ``score`` float32 (batch,): the outlier score of ``forward_scored`` (``training.outlier``),
  NaN for a module exported without one.

The outlier threshold travels in the model's metadata (``outlier_threshold``, absent without
an outlier score), exactly as the TorchScript module holds it. Before the file is written the
two are compared on the test rows: the same argmax on every row, and the probabilities (and
the score, relative to max(1, |score|)) within ``TOLERANCE``; ``OnnxParityError`` otherwise.
"""

from __future__ import annotations

import hashlib
import io
import math
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from training.contract import INPUT_NAME, ONNX_FILE, OUTPUT_NAMES, THRESHOLD_KEY, OnnxEntry, Parity
from training.digits import N_FEATURES

OPSET = 17
#: Largest difference allowed between the two runtimes' probabilities (and relative scores).
TOLERANCE = 1e-4
#: The TorchScript-based exporter keeps global state: one export at a time per process.
_EXPORTING = threading.Lock()


class OnnxParityError(RuntimeError):
    """The ONNX graph does not answer as the TorchScript module does."""


class _Scored(nn.Module):
    """``(probabilities, score)`` of a module with ``forward_scored``. (No ``type:``
    comments in these forwards: TorchScript reads them.)"""

    def __init__(self, module: Any) -> None:  # a ScriptModule: its methods are untyped
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, score = self.module.forward_scored(x)
        return torch.softmax(logits, dim=1), score


class _Unscored(nn.Module):
    """``(probabilities, NaN score)`` of a module without an outlier score."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probabilities = torch.softmax(self.module(x), dim=1)
        return probabilities, torch.full_like(probabilities[:, 0], math.nan)


def threshold_of(module: torch.jit.ScriptModule) -> float | None:
    """The outlier threshold a scripted module holds, ``None`` without an outlier score."""
    if not hasattr(module, "forward_scored"):
        return None
    return float(module.outlier_threshold)


def to_onnx(module: torch.jit.ScriptModule) -> bytes:
    """The ONNX model (bytes) of a scripted module: see the module docstring."""
    threshold = threshold_of(module)
    wrapper = _Scored(module) if threshold is not None else _Unscored(module)
    head = torch.jit.script(wrapper.eval())  # eval: a training-mode head exports dropout
    buffer = io.BytesIO()
    with _EXPORTING, warnings.catch_warnings():  # the notice that this exporter is legacy
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(
            head,
            (torch.zeros(2, N_FEATURES),),
            buffer,  # type: ignore[arg-type]  # a file object works, the annotation says paths
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={name: {0: "batch"} for name in (INPUT_NAME, *OUTPUT_NAMES)},
        )
    model = onnx.load_from_string(buffer.getvalue())
    if threshold is not None:
        onnx.helper.set_model_props(model, {THRESHOLD_KEY: repr(threshold)})
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def compare(module: torch.jit.ScriptModule, graph: bytes, x: torch.Tensor) -> Parity:
    """The TorchScript module and the ONNX ``graph`` (ONNX Runtime, CPU) on rows ``x``."""
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    probabilities, score = session.run(None, {INPUT_NAME: x.numpy().astype(np.float32)})
    with torch.inference_mode():
        if threshold_of(module) is None:
            expected_p = torch.softmax(module(x), dim=1).numpy()
            expected_s = np.full(len(x), math.nan, dtype=np.float32)
        else:
            logits, scores = module.forward_scored(x)
            expected_p, expected_s = torch.softmax(logits, dim=1).numpy(), scores.numpy()
    both_nan = np.isnan(score) & np.isnan(expected_s)
    relative = np.abs(score - expected_s) / np.maximum(1.0, np.abs(expected_s))
    return Parity(
        rows=len(x),
        argmax_equal=bool((probabilities.argmax(1) == expected_p.argmax(1)).all()),
        max_abs_diff_probabilities=float(np.abs(probabilities - expected_p).max()),
        max_rel_diff_score=float(np.where(both_nan, 0.0, relative).max()),
    )


def check(parity: Parity, tolerance: float = TOLERANCE) -> None:
    """``OnnxParityError`` unless the comparison is within ``tolerance`` on every row."""
    problems = []
    if not parity.argmax_equal:
        problems.append("the predicted digit differs on some rows")
    if not parity.max_abs_diff_probabilities < tolerance:
        problems.append(f"probabilities differ by {parity.max_abs_diff_probabilities:.3g}")
    if not parity.max_rel_diff_score < tolerance:
        problems.append(f"outlier scores differ by {parity.max_rel_diff_score:.3g} (relative)")
    if problems:
        raise OnnxParityError(
            f"model.onnx does not match model.pt on {parity.rows} test rows: "
            f"{'; '.join(problems)} (tolerance {tolerance:g}); nothing was published"
        )


def checked_onnx(module: torch.jit.ScriptModule, x_check: torch.Tensor) -> tuple[OnnxEntry, bytes]:
    """The ONNX model of ``module`` and its manifest entry once it matches ``module`` on
    ``x_check`` (the test rows); ``OnnxParityError`` otherwise."""
    graph = to_onnx(module)
    parity = compare(module, graph, x_check)
    check(parity)
    entry = OnnxEntry(
        sha256=hashlib.sha256(graph).hexdigest(),
        opset=OPSET,
        inputs=[INPUT_NAME],
        outputs=list(OUTPUT_NAMES),
        exporter="torch.onnx.export(dynamo=False)",
        onnx_version=onnx.__version__,
        onnxruntime_version=ort.__version__,
        parity=parity,
    )
    return entry, graph


def write_onnx(module: torch.jit.ScriptModule, folder: Path, x_check: torch.Tensor) -> OnnxEntry:
    """``checked_onnx`` written to ``folder / ONNX_FILE``; nothing written if it differs."""
    entry, graph = checked_onnx(module, x_check)
    (Path(folder) / ONNX_FILE).write_bytes(graph)
    return entry
