"""The one accuracy measure of the promotion gate (``service/rollout/gate.py``): a version's
accuracy on the validation rows.

The validation rows are ``training.data.carve_validation(load_split())``: a fixed, stratified
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

import numpy as np
import torch

from service.inference.repository import ModelRepository
from service.rollout.gate import Measure
from training.data import N_CLASSES, Validation, carve_validation, load_split
from training.export import ArtifactError, Manifest

log = logging.getLogger(__name__)

#: float32 rows (N, 64) in, (N, >= 10) out: a runtime's forward (``Runtime.forward``).
Forward = Callable[[np.ndarray], np.ndarray]


@functools.cache
def validation_rows() -> Validation:
    """The validation rows (loaded once per process, ~0.5 s)."""
    return carve_validation(load_split())[1]


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
    rows = validation.x.numpy().astype(np.float32, copy=False)
    predicted = forward()(rows)[:, :N_CLASSES].argmax(axis=1)
    return float((predicted == validation.y.numpy()).mean())


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
                lambda: repository.load(artifact, torch.device("cpu"))[1].forward,
                validation if validation is not None else validation_rows(),
            )
        except ArtifactError as exc:
            log.warning("cannot evaluate %s v%d for the gate: %s", name, version, exc)
            return None

    return measure
