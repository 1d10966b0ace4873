"""What a job's ``"promote": true`` does once its version is published: apply the gate
(``service/rollout/gate.py``) against the current ``production`` and move the alias only if
it passes.

Runs in the worker process (local or Celery), on the job store's database. The move is
conditional on ``production`` still naming the version the candidate was compared with; if
another move got there first, the comparison is made again against the new one.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from sqlalchemy import Engine

from service.inference.repository import ModelRepository
from service.jobs.records import JobRecord
from service.rollout.aliases import PRODUCTION, AliasMoved, AliasStore, Routing
from service.rollout.gate import accuracy, judge, recorded_accuracy
from training.data import Validation
from training.export import ArtifactError, Manifest

log = logging.getLogger(__name__)

_ATTEMPTS = 5


def promote_if_better(
    engine: Engine,
    repository: ModelRepository,
    manifest: Manifest,
    validation: Validation,
    *,
    job: JobRecord,
) -> dict[str, Any]:
    """The promotion record of a job: whether it asked, whether ``production`` moved to its
    version, both validation figures and the tolerance, and why."""
    aliases = AliasStore(engine)
    name, version = manifest.name, manifest.version
    tolerance = job.spec.gate_tolerance
    candidate = float((manifest.validation or {})["accuracy"])
    first = aliases.ensure_production(name, version, "the first version of a new model")
    for _attempt in range(_ATTEMPTS):
        production = aliases.routing().get(name, Routing()).production
        if production == version:
            why = "the first version of a new model" if first else "already production"
            return _record(job.promote, True, candidate, None, None, tolerance, why)
        if not job.promote:
            return _record(False, False, candidate, production, None, tolerance, "not asked")
        figure = production_accuracy(repository, name, production, validation)
        verdict = judge(version, candidate, production, figure, tolerance)
        if not verdict.passed:
            why = f"validation accuracy {candidate:.4f} < {figure:.4f} - {tolerance:g}"
            return _record(True, False, candidate, production, figure, tolerance, why)
        reason = f"job {job.id}: validation accuracy {candidate:.4f} vs " + (
            "(none)" if figure is None else f"{figure:.4f} of version {production}"
        )
        try:
            aliases.move(
                name, PRODUCTION, version, actor=f"job:{job.id}", reason=reason,
                kind="promote", expect=production,
            )  # fmt: skip
        except AliasMoved:
            continue  # production moved meanwhile: compare with the new one
        return _record(True, True, candidate, production, figure, tolerance, reason)
    return _record(True, False, candidate, None, None, tolerance, "production kept moving")


def production_accuracy(
    repository: ModelRepository, name: str, version: int | None, validation: Validation
) -> float | None:
    """Validation accuracy of ``name`` ``version``: its manifest's record, else measured
    on the CPU; ``None`` when the version is not on disk or cannot be loaded."""
    if version is None:
        return None
    for artifact in repository.scan().artifacts:
        if artifact.key != (name, version):
            continue
        figure = recorded_accuracy(artifact.manifest, validation)
        if figure is not None:
            return figure
        try:
            _manifest, module = repository.load(artifact, torch.device("cpu"))
        except ArtifactError as exc:
            log.warning("cannot evaluate %s v%d for the gate: %s", name, version, exc)
            return None
        return accuracy(module, validation)
    return None


def _record(
    requested: bool,
    promoted: bool,
    candidate: float,
    production: int | None,
    figure: float | None,
    tolerance: float,
    reason: str,
) -> dict[str, Any]:
    return {
        "requested": requested,
        "promoted": promoted,
        "validation_accuracy": candidate,
        "production_version": production,
        "production_validation_accuracy": figure,
        "tolerance": tolerance,
        "reason": reason,
    }
