"""What a job will cost, estimated from its architecture and recipe before it is queued.

``estimate(spec, recipe)`` counts multiply-accumulates (MACs) for the whole fit, a training
step being about three forward passes (forward, and the two products of the backward) over
the batch, and the peak activation memory of one step (every layer output of the batch kept
for the backward pass, float32). Both are estimates to bound a job, not measurements: the
limits in ``Settings`` (``max_job_macs``, ``max_job_activation_mb``) admit every recipe in
``training.recipes`` at its default and at twice its iterations.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from training.ensemble import EnsembleSpec
from training.models import ModelSpec
from training.recipes import Recipe

#: Training rows of the split (the full batch when ``batch_size`` is unset or larger).
TRAIN_ROWS = 1437
_PIXELS, _CLASSES, _POOLED = 64, 10, 16
_FLOAT_BYTES = 4


@dataclass(frozen=True)
class Cost:
    """The estimated cost of a fit."""

    macs: int
    activation_bytes: int


def _per_sample(spec: ModelSpec) -> tuple[int, int]:
    """Forward MACs and activation values of one sample."""
    if spec.family == "logistic":
        return _PIXELS * _CLASSES, _CLASSES
    if spec.family == "fnn":
        widths = [_PIXELS] + [spec.hidden] * spec.depth + [_CLASSES]
        macs = sum(a * b for a, b in itertools.pairwise(widths))
        return macs, 2 * spec.hidden * spec.depth + _CLASSES
    macs, values, in_ch = 0, 0, 1
    for out_ch in spec.channels:
        macs += _PIXELS * 9 * in_ch * out_ch
        values += 2 * _PIXELS * out_ch  # the convolution's output and its ReLU's
        in_ch = out_ch
    widths = [in_ch * _POOLED] + ([spec.fc_hidden] if spec.fc_hidden else []) + [_CLASSES]
    macs += sum(a * b for a, b in itertools.pairwise(widths))
    return macs, values + in_ch * _POOLED + sum(widths[1:])


def estimate(spec: ModelSpec | EnsembleSpec, recipe: Recipe | None) -> Cost:
    """MACs of the whole fit and peak activation bytes of one step (an ensemble: its
    members' MACs added up, the largest member's step; its members carry their recipes)."""
    if isinstance(spec, EnsembleSpec):
        costs = [estimate(m.spec, m.recipe) for m in spec.members]
        return Cost(sum(c.macs for c in costs), max(c.activation_bytes for c in costs))
    if recipe is None:
        raise ValueError(f"a {spec.family} fit needs a recipe")
    batch = min(recipe.batch_size or TRAIN_ROWS, TRAIN_ROWS)
    macs, values = _per_sample(spec)
    return Cost(
        macs=3 * macs * batch * recipe.iterations,
        activation_bytes=values * batch * _FLOAT_BYTES,
    )
