"""Fit, calibrate and export one model version: what ``python -m training`` and a ``/train``
job both do.

The model is fitted on every training row (1,437). The same recipe is then fitted ``k`` more
times (``OUT_OF_FOLD_FOLDS``), each on k-1 folds of the training rows, scoring the fold it
left out: every training row gets logits from a model that never saw it. The temperature is
fitted on those out-of-fold logits and folded into the model, and their accuracy is the
held-out figure the manifest records (its ``validation`` entry, read by the promotion gate).
The outlier statistics come from the training rows too (``training.outlier``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.calibration import CalibrationReport, calibrate
from training.contract import Manifest
from training.data import Split, fold_indices, held_out_fold, out_of_fold_record
from training.digits import N_CLASSES, OUT_OF_FOLD_FOLDS
from training.ensemble import train_ensemble
from training.ensemble_spec import EnsembleSpec
from training.export import Architecture, Described, export
from training.fit import FitResult, StepCallback, relay, train
from training.outlier import OutlierStats, fit_outlier
from training.recipes import Recipe
from training.specs import ModelSpec


@dataclass(frozen=True)
class Fitted:
    """A fitted, calibrated model and what its manifest records."""

    model: nn.Module
    spec: Architecture
    recipe: Described
    #: The rows it was fitted on (every training row) and the test rows.
    split: Split
    result: FitResult
    #: ``None`` for a cancelled fit (nothing to publish).
    calibration: CalibrationReport | None
    members: list[dict[str, Any]] | None = None
    outlier: OutlierStats | None = None

    def export(self, models_dir: Path, name: str, recipe_name: str, **options: Any) -> Manifest:
        """Publish it with ``training.export.export`` (``options``: its other keywords)."""
        return export(
            self.model,
            spec=self.spec,
            recipe=self.recipe,
            recipe_name=recipe_name,
            split=self.split,
            result=self.result,
            models_dir=models_dir,
            name=name,
            calibration=self.calibration,
            members=self.members,
            outlier=self.outlier,
            **options,
        )


def _fit(
    spec: ModelSpec | EnsembleSpec, split: Split, recipe: Recipe | None, on_step: StepCallback
) -> tuple[nn.Module, FitResult, list[dict[str, Any]] | None]:
    if isinstance(spec, EnsembleSpec):
        return train_ensemble(spec, split, on_step)
    if recipe is None:
        raise ValueError(f"a {spec.family} model needs a recipe")
    model, result = train(spec, split, recipe, on_step)
    return model, result, None


def total_steps(spec: ModelSpec | EnsembleSpec, recipe: Recipe | None, folds: int) -> int:
    """Optimizer steps of ``fit_calibrated``: the fit on every row and the ``folds`` fits."""
    steps = (
        spec.iterations if isinstance(spec, EnsembleSpec) else recipe.iterations if recipe else 0
    )
    return steps * (folds + 1)


def fit_calibrated(
    spec: ModelSpec | EnsembleSpec,
    split: Split,
    recipe: Recipe | None = None,
    on_step: StepCallback | None = None,
    folds: int = OUT_OF_FOLD_FOLDS,
) -> Fitted:
    """Fit ``spec`` (with ``recipe``; an ensemble carries its members' recipes) on every
    training row, fit it again on each of ``folds`` folds for out-of-fold logits, then fit
    and fold in the temperature. ``on_step`` sees every fit's steps, numbered one after
    another (accuracy points from the first fit only); ``STOP`` cancels the lot."""
    total = total_steps(spec, recipe, folds)
    model, result, members = _fit(spec, split, recipe, relay(on_step, 0, 0.0, total, True))
    done = (result.iterations, result.fit_seconds)
    out_of_fold = torch.zeros(len(split.y_train), N_CLASSES, dtype=torch.float64)
    for fit_pos, out_pos in [] if result.cancelled else fold_indices(split, folds):
        shifted = relay(on_step, done[0], done[1], total, keep_accuracy=False)
        fold_split = held_out_fold(split, fit_pos, out_pos)
        fold_model, fold_result, _ = _fit(spec, fold_split, recipe, shifted)
        done = (done[0] + fold_result.iterations, done[1] + fold_result.fit_seconds)
        if fold_result.cancelled:
            result.cancelled = True
            break
        fold_model.eval()
        with torch.inference_mode():
            out_of_fold[out_pos] = fold_model(fold_split.x_test).double()
    if result.cancelled:
        return Fitted(model, spec, _described(spec, recipe), split, result, None, members)
    report = calibrate(model, out_of_fold, out_of_fold_record(split, folds), split)
    stats = fit_outlier(split)
    return Fitted(model, spec, _described(spec, recipe), split, result, report, members, stats)


def _described(spec: ModelSpec | EnsembleSpec, recipe: Recipe | None) -> Described:
    if isinstance(spec, EnsembleSpec):
        return spec.recipe()
    assert recipe is not None  # _fit refused a single model without one
    return recipe
