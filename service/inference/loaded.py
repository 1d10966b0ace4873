"""One model version in memory: its runtime (``service.inference.runtime``: TorchScript or
ONNX Runtime), and loading it from an artifact on disk (sha256 checked by the runtime's
loader, warm-up forward run here)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.inference.repository import Artifact, ModelRepository
from service.inference.runtime import Runtime
from training.contract import ArtifactError, Manifest
from training.digits import N_CLASSES, N_FEATURES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """One model version in its runtime, ready to answer."""

    manifest: Manifest
    runtime: Runtime
    folder: Path

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> int:
        return self.manifest.version

    @property
    def device(self) -> str:
        return self.runtime.device

    @property
    def outlier_threshold(self) -> float | None:
        """The threshold of the outlier score (``training.outlier``); ``None`` for a version
        exported without one (its predictions carry no flag)."""
        return self.runtime.outlier_threshold

    def predict_scored(self, rows: np.ndarray) -> np.ndarray:
        """(N, 11) for float32 ``rows`` (N, 64): the class probabilities and, as the last
        column, the outlier score of each row (NaN without one), from ONE forward."""
        return self.runtime.forward(np.ascontiguousarray(rows, dtype=np.float32))

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        """Class probabilities (N, 10) for float32 ``rows`` (N, 64)."""
        return self.predict_scored(rows)[:, :N_CLASSES]

    def warm_up(self) -> None:
        """Run a few forwards (1, 8, 1 rows) through the runtime, so the first request does not
        pay for its lazy initialisation, whichever runtime it is."""
        for rows in (1, 8, 1):
            self.runtime.forward(np.zeros((rows, N_FEATURES), dtype=np.float32))


@dataclass(frozen=True)
class Attempt:
    """The outcome of loading one artifact as its files were (``stamp``)."""

    stamp: tuple[int, ...]
    model: LoadedModel | None
    error: str | None


def load_artifact(repository: ModelRepository, artifact: Artifact, device: str) -> Attempt:
    """Load and warm ``artifact`` on ``device``; a refusal is an ``Attempt`` with the reason."""
    try:
        manifest, runtime = repository.load(artifact, device)
        model = LoadedModel(manifest, runtime, artifact.folder)
        model.warm_up()
    except (ArtifactError, RuntimeError) as exc:
        return Attempt(artifact.stamp, None, str(exc))
    log.info("loaded %s v%d: %s on %s", model.name, model.version, runtime.name, model.device)
    return Attempt(artifact.stamp, model, None)
