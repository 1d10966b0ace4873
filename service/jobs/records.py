"""What the job store hands back: ``JobStatus``, ``JobRecord`` (one job row) and ``Curve``
(its loss and accuracy points), plain values with no HTTP or SQL in them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from training.data import OUT_OF_FOLD_FOLDS


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


@dataclass(frozen=True)
class NewJob:
    """A job to queue, in plain values: the model it publishes and the resolved fit."""

    family: str
    name: str
    promote: bool
    #: What the job row keeps: ``request``, the resolved ``architecture`` and ``recipe``,
    #: and ``time_limit_s`` (the fit's wall-clock limit, or null).
    spec: dict[str, Any]

    @property
    def total_iterations(self) -> int:
        """Optimizer steps of the job: the fit on every training row and the out-of-fold fits
        (``training.pipeline.fit_calibrated``), the recipe's iterations each."""
        return int(self.spec["recipe"]["iterations"]) * (OUT_OF_FOLD_FOLDS + 1)


@dataclass(frozen=True)
class JobRecord:
    """One row of ``jobs`` (without its curve)."""

    id: str
    status: JobStatus
    family: str
    name: str
    promote: bool
    spec: dict[str, Any]
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
