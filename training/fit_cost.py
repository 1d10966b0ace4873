"""What a job will cost, estimated from its architecture and recipe before it is queued.

``estimate(spec, recipe)`` gives the seconds one fit should take on one torch thread,
and the peak activation memory of one step (every layer output of the batch kept for the
backward pass, float32). The seconds count everything ``training.fit.fit`` does:

- each training step: forward and backward (about three forward passes) over the batch, a
  fixed overhead per step and per weighted layer (the optimizer, Python, small kernels), and
  the inefficiency of small batches (a batch of ``b`` rows runs at ``b / (b + 3)`` of the
  large-batch rate);
- each evaluation: a forward pass over every train and test row (1,797), after every
  ``acc_step`` iterations and at the end.

A forward pass costs its multiply-accumulates (MACs) and its activation values, each at
its rate for convolutions and for linear layers (convolutions on an 8x8 image are bound by
memory as much as by arithmetic). The constants were fitted to fits measured on the
development machine, shared and loaded (``bench/job_cost.py``; the table in
``docs/train.md``); they are estimates to bound a job, not promises.

``job_estimate`` is what a job costs: a job fits its model ``JOB_FITS`` times (on every
training row, then once per out-of-fold split for the calibration, ``training.pipeline``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from training.digits import OUT_OF_FOLD_FOLDS
from training.ensemble_spec import EnsembleSpec
from training.recipes import Recipe
from training.specs import ModelSpec

#: Training rows of the split (the full batch when ``batch_size`` is unset or larger).
TRAIN_ROWS = 1437
#: Rows one evaluation runs a forward pass over: the training rows and the 360 test rows.
EVAL_ROWS = TRAIN_ROWS + 360
_PIXELS, _CLASSES, _POOLED = 64, 10, 16
_FLOAT_BYTES = 4

#: Calibration (``bench/job_cost.py``): rates of one torch thread, and overheads.
CONV_MACS_PER_S = 14e9
CONV_VALUES_PER_S = 200e6  # a convolution's outputs on an 8x8 image: bound by memory
LINEAR_MACS_PER_S = 10e9
LINEAR_VALUES_PER_S = 1e9
PARAMS_PER_S = 200e6  # the optimizer's update of every parameter, once per step
#: Per step, by optimizer (Adam's and AdamW's update and the learning-rate schedule cost more).
STEP_OVERHEAD_S = {"sgd": 0.5e-3, "adam": 1e-3, "adamw": 1e-3}
LAYER_OVERHEAD_S = 1.2e-3
EVAL_OVERHEAD_S = 0.5e-3
ROW_S = 1.5e-6  # per row of a step: the loss, its softmax, the batch's gather
SMALL_BATCH_ROWS = 3


@dataclass(frozen=True)
class Cost:
    """The estimated cost of a fit."""

    seconds: float
    activation_bytes: int


@dataclass(frozen=True)
class _Shape:
    """One sample's forward pass: convolution and linear MACs and activation values, weighted
    layers, parameters."""

    conv_macs: int
    conv_values: int
    linear_macs: int
    linear_values: int
    layers: int
    params: int

    @property
    def values(self) -> int:
        return self.conv_values + self.linear_values

    @property
    def seconds(self) -> float:
        return (
            self.conv_macs / CONV_MACS_PER_S
            + self.conv_values / CONV_VALUES_PER_S
            + self.linear_macs / LINEAR_MACS_PER_S
            + self.linear_values / LINEAR_VALUES_PER_S
        )


def _linear(widths: list[int]) -> tuple[int, int]:
    """MACs (= weights, less biases) and output values of a chain of linear layers."""
    return sum(a * b for a, b in itertools.pairwise(widths)), sum(widths[1:])


def _shape(spec: ModelSpec) -> _Shape:
    """The forward pass of one sample of ``spec``."""
    if spec.family == "logistic":
        return _Shape(0, 0, _PIXELS * _CLASSES, _CLASSES, 1, (_PIXELS + 1) * _CLASSES)
    if spec.family == "fnn":
        widths = [_PIXELS] + [spec.hidden] * spec.depth + [_CLASSES]
        macs, biases = _linear(widths)
        values = 2 * spec.hidden * spec.depth + _CLASSES  # each layer's output and activation
        return _Shape(0, 0, macs, values, spec.depth + 1, macs + biases)
    macs, values, params, in_ch = 0, 0, 0, 1
    for out_ch in spec.channels:
        macs += _PIXELS * 9 * in_ch * out_ch
        params += 9 * in_ch * out_ch + out_ch
        values += 2 * _PIXELS * out_ch  # the convolution's output and its ReLU's
        in_ch = out_ch
    widths = [in_ch * _POOLED] + ([spec.fc_hidden] if spec.fc_hidden else []) + [_CLASSES]
    fc_macs, fc_values = _linear(widths)
    layers = len(spec.channels) + len(widths) - 1
    pooled = in_ch * _POOLED
    return _Shape(macs, values + pooled, fc_macs, fc_values, layers, params + fc_macs + fc_values)


def _fit_seconds(shape: _Shape, recipe: Recipe, batch: int) -> float:
    """Seconds of ``recipe.iterations`` steps of ``batch`` rows and of their evaluations."""
    step = (
        STEP_OVERHEAD_S[recipe.optimizer]
        + LAYER_OVERHEAD_S * shape.layers
        + shape.params / PARAMS_PER_S
        + ROW_S * batch
        + 3 * shape.seconds * (batch + SMALL_BATCH_ROWS)
    )
    evaluations = math.ceil(recipe.iterations / recipe.acc_step)
    evaluation = EVAL_OVERHEAD_S * shape.layers + shape.seconds * EVAL_ROWS
    return recipe.iterations * step + evaluations * evaluation


#: Fits in one job: on every training row, and one per out-of-fold split.
JOB_FITS = OUT_OF_FOLD_FOLDS + 1


def job_estimate(spec: ModelSpec | EnsembleSpec, recipe: Recipe | None) -> Cost:
    """A job's cost: ``JOB_FITS`` fits' seconds (the fold fits see 4/5 of the rows; counted
    whole, an upper bound), the activation memory of one step."""
    one = estimate(spec, recipe)
    return Cost(one.seconds * JOB_FITS, one.activation_bytes)


def estimate(spec: ModelSpec | EnsembleSpec, recipe: Recipe | None) -> Cost:
    """Seconds of the whole fit and peak activation bytes of one step (an ensemble: its
    members' seconds added up, the largest member's step; its members carry their recipes)."""
    if isinstance(spec, EnsembleSpec):
        costs = [estimate(m.spec, m.recipe) for m in spec.members]
        return Cost(sum(c.seconds for c in costs), max(c.activation_bytes for c in costs))
    if recipe is None:
        raise ValueError(f"a {spec.family} fit needs a recipe")
    batch = min(recipe.batch_size or TRAIN_ROWS, TRAIN_ROWS)
    shape = _shape(spec)
    return Cost(
        seconds=_fit_seconds(shape, recipe, batch),
        activation_bytes=shape.values * batch * _FLOAT_BYTES,
    )
