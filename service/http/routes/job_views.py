"""The JSON views of a job: ``JobView`` (``GET /train/{id}``), the SSE event payloads and
the loss-curve thinning.

``loss_curve`` in ``JobView`` holds at most ``MAX_CURVE_POINTS`` floats: with ``n`` losses
and ``stride = ceil(n / 1000)``, point ``i`` is the mean of losses ``i*stride+1 ..
(i+1)*stride`` (``loss_curve_iterations`` gives the last iteration of each span).
``GET /train/{id}/curve.json`` serves every loss.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from service.jobs.records import Curve, JobRecord, JobStatus

MAX_CURVE_POINTS = 1000


class Progress(BaseModel):
    """How far the fit is: iteration of total, seconds spent and estimated to go."""

    iteration: int
    total: int
    fraction: float
    elapsed_s: float | None
    remaining_s: float | None = Field(description="linear estimate; null before the first step")


class LossCurve(BaseModel):
    """The loss curve, thinned to at most 1,000 points (means over ``stride`` iterations)."""

    iterations: list[int]
    values: list[float]
    stride: int
    points: int = Field(description="losses recorded so far (the unthinned length)")


class AccuracyCurve(BaseModel):
    """Train and test accuracy, recorded every ``acc_step`` iterations (columns)."""

    iterations: list[int]
    train: list[float]
    test: list[float]

    @classmethod
    def of(cls, points: list[dict[str, Any]]) -> AccuracyCurve:
        return cls(
            iterations=[int(p["iteration"]) for p in points],
            train=[float(p["train"]) for p in points],
            test=[float(p["test"]) for p in points],
        )


class PublishedModel(BaseModel):
    """The model version a succeeded job published."""

    name: str
    version: int


class Promotion(BaseModel):
    """Whether ``production`` moved to the job's version, with both validation figures."""

    requested: bool = Field(description="the job asked for it (`promote: true`)")
    promoted: bool = Field(description="`production` names the job's version now")
    validation_accuracy: float = Field(description="the new version's, on the validation rows")
    production_version: int | None = Field(description="production when it was compared")
    production_validation_accuracy: float | None
    tolerance: float
    reason: str


class JobView(BaseModel):
    """A training job as the API shows it."""

    id: str
    status: JobStatus
    family: str
    name: str = Field(description="model name the result is published under")
    recipe: str
    promote: bool
    architecture: dict[str, Any]
    hyperparameters: dict[str, Any] = Field(description="the resolved recipe the fit uses")
    created: datetime
    started: datetime | None
    finished: datetime | None
    progress: Progress
    loss_curve: list[float] = Field(
        description="loss per iteration, thinned to at most 1,000 means of `loss_curve_stride` "
        "consecutive iterations; every loss is in curve.json"
    )
    loss_curve_iterations: list[int] = Field(description="last iteration of each point's span")
    loss_curve_stride: int
    loss_points: int = Field(description="losses recorded so far (the unthinned length)")
    accuracy: AccuracyCurve
    metrics: dict[str, float | int] | None
    promotion: Promotion | None = Field(
        description="what the promotion gate decided (null until the job has published)"
    )
    model: PublishedModel | None
    error: str | None
    cancel_requested: bool
    links: dict[str, str]


class JobPage(BaseModel):
    """One page of ``GET /train``, newest first."""

    jobs: list[JobView]
    total: int
    limit: int
    offset: int
    next: str | None = Field(description="URL of the next page, null on the last")


class FullCurve(BaseModel):
    """Every loss (index i = iteration i + 1) and every accuracy point of a job."""

    job_id: str
    loss_curve: list[float]
    accuracy: AccuracyCurve


def thin(losses: list[float], limit: int = MAX_CURVE_POINTS) -> LossCurve:
    """Means over spans of ``ceil(n / limit)`` losses, at each span's last iteration."""
    n = len(losses)
    stride = max(1, math.ceil(n / limit))
    iterations, values = [], []
    for start in range(0, n, stride):
        span = losses[start : start + stride]
        iterations.append(start + len(span))
        values.append(sum(span) / len(span))
    return LossCurve(iterations=iterations, values=values, stride=stride, points=n)


def _time(stamp: float | None) -> datetime | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC)


def progress(job: JobRecord) -> Progress:
    """Iteration of total, elapsed seconds and a linear estimate of the rest."""
    remaining = None
    if job.elapsed is not None and job.iteration > 0 and not job.status.finished:
        remaining = job.elapsed / job.iteration * (job.total_iterations - job.iteration)
    return Progress(
        iteration=job.iteration,
        total=job.total_iterations,
        fraction=job.iteration / job.total_iterations if job.total_iterations else 0.0,
        elapsed_s=job.elapsed,
        remaining_s=remaining,
    )


def job_view(job: JobRecord, curve: Curve) -> JobView:
    """The JSON view of ``job`` with its thinned loss curve and its accuracy curve."""
    loss = thin(curve.losses)
    model = None
    if job.model_name is not None and job.model_version is not None:
        model = PublishedModel(name=job.model_name, version=job.model_version)
    return JobView(
        id=job.id,
        status=job.status,
        family=job.family,
        name=job.name,
        recipe=job.spec.recipe,
        promote=job.promote,
        architecture=job.spec.architecture,
        hyperparameters=job.spec.hyperparameters,
        created=datetime.fromtimestamp(job.created_at, UTC),
        started=_time(job.started_at),
        finished=_time(job.finished_at),
        progress=progress(job),
        loss_curve=loss.values,
        loss_curve_iterations=loss.iterations,
        loss_curve_stride=loss.stride,
        loss_points=loss.points,
        accuracy=AccuracyCurve.of(curve.accuracy),
        metrics={k: v for k, v in job.metrics.items() if k != "promotion"}
        if job.metrics is not None
        else None,
        promotion=(job.metrics or {}).get("promotion"),
        model=model,
        error=job.error,
        cancel_requested=job.cancel_requested,
        links=_links(f"/train/{job.id}"),
    )


def _links(base: str) -> dict[str, str]:
    """Where a job's own resources are, from its URL ``base``."""
    return {
        "self": base,
        "events": f"{base}/events",
        "curve": f"{base}/curve.json",
        "plot": f"{base}/curve.png",
    }


def progress_event(job: JobRecord, new: Curve, first_iteration: int) -> dict[str, Any]:
    """Payload of an SSE ``progress`` event: the progress and the points added since the
    previous event (``losses[i]`` is the loss of iteration ``first_iteration + i``)."""
    return {
        "id": job.id,
        "status": job.status.value,
        "progress": progress(job).model_dump(),
        "first_iteration": first_iteration,
        "losses": new.losses,
        "accuracy": new.accuracy,
    }
