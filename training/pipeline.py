"""Fit, calibrate and export one model version: what ``python -m training`` and a ``/train``
job both do.

The validation rows (``carve_validation``) are held out of the fit; the temperature is fitted
on them and folded into the model, so the exported module's probabilities are calibrated
and the manifest can say how it did on rows it never saw (its ``validation`` entry).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from training.calibration import CalibrationReport, calibrate
from training.data import Split, carve_validation
from training.ensemble import EnsembleSpec, train_ensemble
from training.export import Architecture, Described, Manifest, export
from training.fit import FitResult, StepCallback, train
from training.models import ModelSpec
from training.recipes import Recipe


@dataclass(frozen=True)
class Fitted:
    """A fitted, calibrated model and what its manifest records."""

    model: nn.Module
    spec: Architecture
    recipe: Described
    #: The rows it was fitted on (training rows less the validation rows) and the test rows.
    split: Split
    result: FitResult
    #: ``None`` for a cancelled fit (nothing to publish).
    calibration: CalibrationReport | None
    members: list[dict[str, Any]] | None = None

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
            **options,
        )


def fit_calibrated(
    spec: ModelSpec | EnsembleSpec,
    split: Split,
    recipe: Recipe | None = None,
    on_step: StepCallback | None = None,
) -> Fitted:
    """Fit ``spec`` (with ``recipe``; an ensemble carries its members' recipes) on the
    training rows less the validation rows, then fit and fold in the temperature."""
    fitting, validation = carve_validation(split)
    members = None
    described: Described
    model: nn.Module
    if isinstance(spec, EnsembleSpec):
        model, result, members = train_ensemble(spec, fitting, on_step)
        described = spec.recipe()
    else:
        if recipe is None:
            raise ValueError(f"a {spec.family} model needs a recipe")
        model, result = train(spec, fitting, recipe, on_step)
        described = recipe
    report = None if result.cancelled else calibrate(model, validation, fitting)
    return Fitted(model, spec, described, fitting, result, report, members)
