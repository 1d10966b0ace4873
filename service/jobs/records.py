"""What the job store takes and hands back: ``ResolvedJob`` (a job as resolved from its
request), ``JobStatus``, ``JobRecord`` (one job row) and ``Curve`` (its loss and accuracy
points), plain values with no HTTP or SQL in them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from service.settings import DEFAULT_GATE_TOLERANCE
from training.digits import OUT_OF_FOLD_FOLDS
from training.ensemble_spec import EnsembleSpec
from training.fit_cost import Cost
from training.recipes import Recipe, RecipeName
from training.specs import ModelSpec


class JobStatus(enum.StrEnum):
    """Life of a job: queued -> running -> succeeded | failed | cancelled."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class ResolvedJob(BaseModel):
    """A job resolved once from its request (``JobSpec.resolve``): the model it publishes,
    the architecture and recipe it fits, its estimated cost and its limits. The job row keeps
    it (``model_dump``); every process reads it back with ``model_validate`` (rows of older
    releases are rewritten to this form by migration 0002)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    family: str
    name: str
    promote: bool = False
    #: The recipe preset the request named (``default`` or ``lecture``).
    recipe: RecipeName = "default"
    architecture: dict[str, Any]
    #: The resolved recipe (an ensemble: its seed and each member's recipe).
    hyperparameters: dict[str, Any]
    #: An ensemble's members (``Member.to_dict``); ``None`` for a single model.
    members: list[dict[str, Any]] | None = None
    #: ``None`` only in rows written before costs were kept.
    cost: Cost | None = None
    #: Wall-clock seconds the fit may run (``None``: no limit).
    time_limit_s: float | None = None
    gate_tolerance: float = DEFAULT_GATE_TOLERANCE

    @property
    def total_iterations(self) -> int:
        """Optimizer steps of the job: the fit on every training row and the out-of-fold fits
        (``training.pipeline.fit_calibrated``), the recipe's iterations each."""
        return int(self.hyperparameters["iterations"]) * (OUT_OF_FOLD_FOLDS + 1)

    def fit_spec(self) -> tuple[ModelSpec | EnsembleSpec, Recipe | None]:
        """What ``training`` fits: the architecture and recipe (an ensemble: its members,
        each with its recipe, and no recipe of its own)."""
        if self.members is not None:
            seed = int(self.hyperparameters["seed"])
            return EnsembleSpec.from_members(self.members, seed), None
        return ModelSpec.from_dict(self.architecture), Recipe(**self.hyperparameters)


@dataclass(frozen=True)
class JobRecord:
    """One row of ``jobs`` (without its curve)."""

    id: str
    status: JobStatus
    family: str
    name: str
    promote: bool
    spec: ResolvedJob
    created_at: float
    started_at: float | None
    finished_at: float | None
    owner: str | None
    worker_pid: int | None
    heartbeat_at: float | None
    cancel_requested: bool
    cancel_reason: str | None
    iteration: int
    total_iterations: int
    elapsed: float | None
    last_loss: float | None
    metrics: dict[str, Any] | None
    model_name: str | None
    model_version: int | None
    error: str | None

    @classmethod
    def from_row(cls, row: Any) -> JobRecord:
        data = dict(row._mapping)
        data["status"] = JobStatus(data["status"])
        data["cancel_requested"] = bool(data["cancel_requested"])
        data["promote"] = bool(data["promote"])
        data["spec"] = ResolvedJob.model_validate(data["spec"])
        return cls(**data)


@dataclass
class Curve:
    """The loss of every iteration so far and the accuracy points, oldest first."""

    losses: list[float] = field(default_factory=list)
    accuracy: list[dict[str, float]] = field(default_factory=list)
    #: ``seq`` of the last chunk read (to ask only for newer chunks next time).
    last_seq: int = 0

    def extend(self, losses: list[float], accuracy: list[dict[str, float]], seq: int) -> None:
        self.losses.extend(losses)
        self.accuracy.extend(accuracy)
        self.last_seq = max(self.last_seq, seq)
