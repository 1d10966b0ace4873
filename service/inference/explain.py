"""Explanations by occlusion: how much each of the 64 pixels holds up a class's probability.

For each input row, 64 copies are made, each with one pixel set to ``BASELINE`` (0, the
background of load_digits), and sent with the row itself through the model's calibrated
probability forward in ONE batch of ``65 x rows`` rows. A pixel's attribution is
``p_target(row) - p_target(row with that pixel occluded)``: positive where the pixel supports
the class, negative where it speaks against it, 0 for a pixel already at the baseline. Only a
forward is needed, so every runtime (TorchScript of any family, the ensemble) is explained
alike.

``occlusion`` computes it with any forward (the benchmark calls a model directly);
``explain`` routes a request as predict does (``ModelRegistry.resolve``: ``?version=``,
``?alias=``, the canary split) and runs the batch through the version's micro-batcher
(``DataPlane.scored``): the forward thread, the queue limit (429), the request's deadline
(504) and the version's lifecycle (503 ``model_unavailable`` when it is unloaded or reloaded
while the batch waits) are those of predict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from service.errors import InvalidInput
from service.inference.dataplane import DataPlane
from training.digits import N_CLASSES, N_FEATURES

#: The value an occluded pixel takes: load_digits' background.
BASELINE = 0.0
#: Rows through the model per explained row: the row itself, then one per occluded pixel.
COPIES = 1 + N_FEATURES
METHOD = "occlusion"

#: float32 rows (M, 64) in, class probabilities (M, >= 10) out.
Forward = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Occlusion:
    """The occlusion maps of N rows."""

    labels: np.ndarray  # (N,) int64: the predicted class of each row
    targets: np.ndarray  # (N,) int64: the class each map explains
    probabilities: np.ndarray  # (N,) float32: p_target of each row as it is
    attributions: np.ndarray  # (N, 64) float32: p_target(row) - p_target(pixel occluded)


@dataclass(frozen=True)
class Explanation:
    """The occlusion maps of one request, and the version that made them."""

    model: str
    version: int
    alias: str | None
    device: str
    maps: Occlusion
    #: The runtime that ran the forward (``torchscript``, ``onnxruntime``).
    runtime: str = ""


def occluded_batch(rows: np.ndarray) -> np.ndarray:
    """float32 (65 N, 64): for each row, the row itself, then 64 copies with pixel 0, 1, ...,
    63 set to ``BASELINE``."""
    n = len(rows)
    batch = np.repeat(rows.astype(np.float32, copy=False), COPIES, axis=0)
    blocks = batch.reshape(n, COPIES, N_FEATURES)
    pixels = np.arange(N_FEATURES)
    blocks[:, 1 + pixels, pixels] = BASELINE
    return batch


def check_target(target: int | None) -> None:
    """``InvalidInput`` unless ``target`` is ``None`` or a class 0..9."""
    if target is not None and not 0 <= target < N_CLASSES:
        raise InvalidInput(
            f"target: {target} is not a class",
            expected=f"target: a class 0..{N_CLASSES - 1}, or none for the predicted label",
            parameter="target",
        )


def maps_of(probabilities: np.ndarray, n: int, target: int | None = None) -> Occlusion:
    """The maps of ``n`` rows from the probabilities (65 n, >= 10) of ``occluded_batch``."""
    check_target(target)
    blocks = probabilities[:, :N_CLASSES].reshape(n, COPIES, N_CLASSES)
    originals = blocks[:, 0, :]  # (n, 10)
    labels = originals.argmax(axis=1)
    targets = labels if target is None else np.full(n, target, dtype=labels.dtype)
    picked = np.take_along_axis(blocks, targets[:, None, None], axis=2)[:, :, 0]  # (n, 65)
    attributions = picked[:, :1] - picked[:, 1:]
    return Occlusion(
        labels.astype(np.int64),
        targets.astype(np.int64),
        picked[:, 0].astype(np.float32),
        attributions.astype(np.float32),
    )


def occlusion(forward: Forward, rows: np.ndarray, target: int | None = None) -> Occlusion:
    """The occlusion maps of float32 ``rows`` (N, 64) with one call of ``forward``."""
    check_target(target)
    return maps_of(forward(occluded_batch(rows)), len(rows), target)


def deletion_curve(
    forward: Forward, rows: np.ndarray, orders: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """The deletion test of a pixel ranking: (65,) the mean probability of ``labels`` (N,)
    over ``rows`` (N, 64) once the first k pixels of each row's ``orders`` (N, 64, a
    permutation each) are set to ``BASELINE``, k = 0..64; one call of ``forward``. The faster
    it falls, the more the ranking names the pixels the model uses."""
    n = len(rows)
    ranks = np.argsort(orders, axis=1)  # (N, 64): the step at which each pixel goes
    removed = ranks[:, None, :] < np.arange(COPIES)[None, :, None]  # (N, 65, 64)
    batch = np.where(removed, np.float32(BASELINE), rows[:, None, :].astype(np.float32))
    probabilities = forward(batch.reshape(n * COPIES, N_FEATURES))[:, :N_CLASSES]
    blocks = probabilities.reshape(n, COPIES, N_CLASSES)
    picked = np.take_along_axis(blocks, labels[:, None, None], axis=2)[:, :, 0]
    curve: np.ndarray = picked.mean(axis=0)
    return curve


def area_under(curve: np.ndarray) -> float:
    """The area under a deletion curve over the fraction of pixels removed (0..1)."""
    return float((curve[:-1] + curve[1:]).sum() / 2 / (len(curve) - 1))


async def explain(
    dataplane: DataPlane,
    name: str,
    version: int | None,
    rows: np.ndarray,
    *,
    target: int | None = None,
    alias: str | None = None,
    request_id: str | None = None,
) -> Explanation:
    """The occlusion maps of ``rows`` (N, 64) by model ``name``, routed as predict is: at
    ``version``, else at ``alias``'s version, else as the split (sticky per ``request_id``)
    or ``production`` says. One batch of 65 N rows through the version's batcher."""
    check_target(target)
    choice = dataplane.registry.resolve(name, version, alias, request_id)
    model = choice.model
    scored = await dataplane.scored(model, occluded_batch(rows))
    maps = maps_of(scored, len(rows), target)
    device = str(model.device)
    return Explanation(model.name, model.version, choice.alias, device, maps, model.runtime.name)
