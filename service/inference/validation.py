"""The one accuracy measure of the promotion gate (``service/rollout/gate.py``): a version's
accuracy on the validation rows.

The validation rows are ``training.digits.validation_positions`` of the lecture's training rows
(``carve_validation`` in training, the same rows as numpy arrays here): a fixed, stratified
15% of the training rows, which job fits leave out; the lecture's test rows stay the report,
never a selection criterion. A version's figure is the one recorded in its manifest
(``"validation"``) when it was measured on these same rows, or out of fold on every training
row (versions fitted on all 1,437 rows since issue 23: each row scored by one of 5 fits that
left it out: an honest held-out figure too), else a forward over the validation rows.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from service.inference.repository import ModelRepository
from service.rollout.gate import Measure
from training.contract import ArtifactError, Manifest
from training.digits import N_CLASSES, lecture_arrays, validation_facts, validation_positions

log = logging.getLogger(__name__)

#: float32 rows (N, 64) in, (N, >= 10) out: a runtime's forward (``Runtime.forward``).
Forward = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Validation:
    """The validation rows: ``x`` float32 (N, 64), ``y`` int64 (N,)."""

    x: np.ndarray
    y: np.ndarray

    def describe(self) -> dict[str, object]:
        """What a manifest records of these rows (``training.data.Validation.describe``)."""
        return validation_facts(len(self.y))


@functools.cache
def validation_rows() -> Validation:
    """The validation rows (loaded once per process, ~0.5 s; scikit-learn reads the data)."""
    x_train, y_train, _, _ = lecture_arrays()
    _, positions = validation_positions(y_train)
    return Validation(x_train[positions], y_train[positions])


def accuracy(manifest: Manifest, forward: Callable[[], Forward], validation: Validation) -> float:
    """The manifest's held-out accuracy if it was measured on these rows or out of fold, else
    the share of the rows whose argmax of ``forward()(x)`` is their label (``forward`` is
    only called, e.g. a model loaded, when the manifest has no figure)."""
    record = manifest.validation or {}
    facts = {k: v for k, v in record.items() if k != "accuracy"}
    if "accuracy" in record and (
        record.get("from") == "out_of_fold" or facts == validation.describe()
    ):
        return float(record["accuracy"])
    predicted = forward()(validation.x)[:, :N_CLASSES].argmax(axis=1)
    return float((predicted == validation.y).mean())


def stored_accuracy(
    repository: ModelRepository, name: str, validation: Validation | None = None
) -> Measure:
    """The gate's ``measure`` for model ``name``, for a job's worker and a manual move alike:
    ``accuracy`` of a version on disk (loaded on the CPU, in the repository's runtime, if
    its manifest has no figure) on
    ``validation`` (default: ``validation_rows()``, loaded at the first measure); ``None``
    when it is not on disk or cannot be loaded."""

    def measure(version: int) -> float | None:
        found = [a for a in repository.scan().artifacts if a.key == (name, version)]
        if not found:
            return None
        artifact = found[0]
        try:
            return accuracy(
                artifact.manifest,
                lambda: repository.load(artifact, "cpu")[1].forward,
                validation if validation is not None else validation_rows(),
            )
        except ArtifactError as exc:
            log.warning("cannot evaluate %s v%d for the gate: %s", name, version, exc)
            return None
        except ModuleNotFoundError as exc:  # the API install: no scikit-learn to read the rows
            log.warning(
                "cannot evaluate %s v%d for the gate: its manifest records no validation "
                "figure and this install cannot load the rows (%s)",
                name,
                version,
                exc,
            )
            return None

    return measure
