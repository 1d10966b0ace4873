"""The promotion gate: a version may become ``production`` only if its accuracy on the
validation rows is at least production's minus a tolerance (``DIGITS_GATE_TOLERANCE``).

The validation rows are ``training.data.carve_validation(load_split())``: a fixed, stratified
15% of the training rows; the lecture's test rows stay the report, never a selection
criterion. A version's figure is the one recorded in its manifest (``"validation"``) when it
was measured on these same rows, or out of fold on every training row (versions fitted on all
1,437 rows since issue 23: each row scored by one of 5 fits that left it out), else it is
measured here on the validation rows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from training.data import Validation, carve_validation, load_split
from training.export import Manifest

Forward = Callable[[torch.Tensor], torch.Tensor]


@functools.cache
def validation_rows() -> Validation:
    """The validation rows (loaded once per process, ~0.5 s)."""
    return carve_validation(load_split())[1]


def accuracy(forward: Forward, validation: Validation) -> float:
    """Share of the validation rows whose argmax of ``forward(x)`` is their label."""
    with torch.inference_mode():
        predicted = forward(validation.x).argmax(dim=1).cpu()
    return float((predicted == validation.y).float().mean())


def recorded_accuracy(manifest: Manifest, validation: Validation) -> float | None:
    """The manifest's held-out accuracy if it was measured on these rows or out of fold on
    every training row (a version fitted on all of them: ``training.pipeline``), else
    ``None``. Both are honest held-out figures: no row scored was in the fit that scored it."""
    record = manifest.validation or {}
    if "accuracy" not in record:
        return None
    if record.get("from") == "out_of_fold":
        return float(record["accuracy"])
    facts = {k: v for k, v in record.items() if k != "accuracy"}
    return float(record["accuracy"]) if facts == validation.describe() else None


@dataclass(frozen=True)
class Verdict:
    """The gate's answer, with both figures."""

    passed: bool
    version: int
    accuracy: float
    production_version: int | None
    production_accuracy: float | None
    tolerance: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(
    version: int,
    candidate: float,
    production_version: int | None,
    production: float | None,
    tolerance: float,
) -> Verdict:
    """Pass when there is no production figure, or ``candidate >= production - tolerance``."""
    passed = production is None or candidate >= production - tolerance - 1e-12
    return Verdict(passed, version, candidate, production_version, production, tolerance)
