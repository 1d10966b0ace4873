"""One model version in memory: its TorchScript module on a device, and loading it from an
artifact on disk (sha256 checked by the repository, warm-up forward run here)."""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from service.inference.repository import Artifact, ModelRepository
from training.data import N_FEATURES
from training.export import ArtifactError, Manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """One model version on its device, ready to answer."""

    manifest: Manifest
    module: torch.jit.ScriptModule
    device: torch.device
    folder: Path

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> int:
        return self.manifest.version

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (N, 10) on the CPU for a float32 (N, 64) batch."""
        with torch.inference_mode():
            logits = self.module(x.to(self.device, non_blocking=True))
            return torch.softmax(logits, dim=1).cpu()

    @functools.cached_property
    def outlier_threshold(self) -> float | None:
        """The threshold of the module's outlier score (``training.outlier``); ``None`` for a
        version exported without one (its predictions carry no flag)."""
        if not hasattr(self.module, "forward_scored"):
            return None
        return float(self.module.outlier_threshold)

    def predict_scored(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 11) on the CPU: the class probabilities and, as the last column, the outlier
        score of each row (NaN without one), from ONE call of the module."""
        with torch.inference_mode():
            x = x.to(self.device, non_blocking=True)
            if self.outlier_threshold is None:
                logits = self.module(x)
                score = torch.full((len(x),), math.nan, device=x.device)
            else:
                logits, score = self.module.forward_scored(x)
            probabilities = torch.softmax(logits, dim=1)
            return torch.cat([probabilities, score.unsqueeze(1).to(probabilities.dtype)], 1).cpu()

    def warm_up(self) -> None:
        """Run a few forwards so the first request does not pay for lazy initialisation."""
        for rows in (1, 8, 1):
            self.predict_scored(torch.zeros(rows, N_FEATURES))


@dataclass(frozen=True)
class Attempt:
    """The outcome of loading one artifact as its files were (``stamp``)."""

    stamp: tuple[int, ...]
    model: LoadedModel | None
    error: str | None


def load_artifact(repository: ModelRepository, artifact: Artifact, device: torch.device) -> Attempt:
    """Load and warm ``artifact`` on ``device``; a refusal is an ``Attempt`` with the reason."""
    try:
        manifest, module = repository.load(artifact, device)
        model = LoadedModel(manifest, module, device, artifact.folder)
        model.warm_up()
    except (ArtifactError, RuntimeError) as exc:
        return Attempt(artifact.stamp, None, str(exc))
    log.info("loaded %s v%d on %s", model.name, model.version, device)
    return Attempt(artifact.stamp, model, None)
