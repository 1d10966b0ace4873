"""Training jobs over HTTP: submit, follow (JSON, SSE, plots), list and cancel.

The handlers only translate HTTP to ``Jobs`` on ``app.state.jobs`` and back; the
runner, the store and the worker processes do the work. See ``docs/train.md``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status
from sse_starlette import EventSourceResponse, ServerSentEvent

from service.errors import InvalidInput
from service.http.deps import FeedsDep, JobsDep, PlotterDep, SettingsDep
from service.http.numbers import PLAIN
from service.http.policy import ADMIN, READ, needs
from service.http.routes.job_request import JobSpec
from service.http.routes.job_views import (
    AccuracyCurve,
    FullCurve,
    JobPage,
    JobView,
    job_view,
    progress_event,
)
from service.jobs.records import JobStatus, ResolvedJob
from service.settings import Settings
from training.curves import plot_curves

router = APIRouter(prefix="/train", tags=["train"])

_JOB_RESPONSES: dict[int | str, dict[str, str]] = {404: {"description": "no such job"}}


@router.post(
    "",
    summary="Start a training job",
    status_code=status.HTTP_202_ACCEPTED,
    responses={429: {"description": "queue full; see Retry-After"}},
)
@needs(ADMIN)
async def submit(
    spec: JobSpec, jobs: JobsDep, settings: SettingsDep, response: Response
) -> JobView:
    """Queue a training job; 202 with the job and ``Location: /train/{id}``."""
    resolved = spec.resolve(
        time_limit_s=settings.job_time_limit_s, gate_tolerance=settings.gate_tolerance
    )
    _check_cost(resolved, settings)
    job = await jobs.submit(resolved)
    response.headers["Location"] = f"/train/{job.id}"
    return job_view(job, await jobs.curve(job.id))


def _check_cost(job: ResolvedJob, settings: Settings) -> None:
    """``InvalidInput`` (422) naming the limit when the job's estimated cost exceeds it."""
    cost = job.cost
    assert cost is not None, "JobSpec.resolve estimates the cost"
    if cost.seconds > settings.max_job_seconds_estimate:
        raise InvalidInput(
            f"this job's fit is estimated at {cost.seconds:,.0f} s, over the limit "
            f"max_job_seconds_estimate = {settings.max_job_seconds_estimate:,.0f} s",
            expected="fewer iterations, a larger acc_step (fewer evaluations over every row), "
            "or fewer or narrower layers",
        )
    limit_bytes = settings.max_job_activation_mb * 2**20
    if cost.activation_bytes > limit_bytes:
        raise InvalidInput(
            f"one training step would hold about {cost.activation_bytes / 2**20:.0f} MiB of "
            f"activations, over the limit max_job_activation_mb = {settings.max_job_activation_mb}",
            expected="a smaller batch_size, or fewer or narrower layers",
        )


@router.get("", summary="List training jobs, newest first")
@needs(READ)
async def list_jobs(
    jobs: JobsDep,
    request: Request,
    job_status: Annotated[JobStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=100), PLAIN] = 20,
    offset: Annotated[int, Query(ge=0, le=2**63 - 1), PLAIN] = 0,  # SQL's BIGINT OFFSET
) -> JobPage:
    """Jobs newest first, ``limit`` per page from ``offset``, optionally of one status."""
    records, total = await jobs.list(status=job_status, limit=limit, offset=offset)
    next_url = None
    if offset + len(records) < total:
        next_url = str(request.url.include_query_params(offset=offset + len(records)))
    curves = await asyncio.gather(*(jobs.curve(r.id) for r in records))
    return JobPage(
        jobs=[job_view(r, c) for r, c in zip(records, curves, strict=True)],
        total=total,
        limit=limit,
        offset=offset,
        next=next_url,
    )


@router.get("/{job_id}", summary="Show a job: status, progress, curves", responses=_JOB_RESPONSES)
@needs(READ)
async def get_job(job_id: str, jobs: JobsDep) -> JobView:
    """Status, progress, loss curve (at most 1,000 points), accuracy, metrics, model."""
    job = await jobs.get(job_id)
    return job_view(job, await jobs.curve(job_id))


@router.delete(
    "/{job_id}",
    summary="Cancel a queued job or stop a running one",
    responses={
        202: {"description": "running: stop requested", "model": JobView},
        409: {"description": "ended"},
        **_JOB_RESPONSES,
    },
)
@needs(ADMIN)
async def cancel(job_id: str, jobs: JobsDep, response: Response) -> JobView:
    """Cancel a queued job (200, ``cancelled``) or stop a running one (202; it stops
    within a second); 409 for a job that has already ended."""
    job = await jobs.cancel(job_id)
    if not job.status.finished:
        response.status_code = status.HTTP_202_ACCEPTED
    return job_view(job, await jobs.curve(job_id))


@router.get(
    "/{job_id}/curve.json", summary="Every loss and accuracy point (JSON)", responses=_JOB_RESPONSES
)
@needs(READ)
async def curve_json(job_id: str, jobs: JobsDep) -> FullCurve:
    """Every loss (iteration i at index i - 1) and every accuracy point, unthinned."""
    curve = await jobs.curve(job_id)
    return FullCurve(
        job_id=job_id, loss_curve=curve.losses, accuracy=AccuracyCurve.of(curve.accuracy)
    )


def _draw(loss: list[float], accuracy: list[dict[str, float]], title: str, fmt: str) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"curves.{fmt}"
        plot_curves(loss, accuracy, path, title)
        return path.read_bytes()


@router.get(
    "/{job_id}/curve.{fmt}",
    summary="Loss and accuracy curves drawn as PNG or SVG",
    responses={
        200: {"content": {"image/png": {}, "image/svg+xml": {}}},
        429: {"description": "plot queue full; see Retry-After"},
        **_JOB_RESPONSES,
    },
    response_class=Response,
)
@needs(READ)
async def curve_plot(
    job_id: str, fmt: Literal["png", "svg"], jobs: JobsDep, plotter: PlotterDep, request: Request
) -> Response:
    """The loss and accuracy curves drawn by ``training.curves.plot_curves``, in the app's
    one plotting thread (never on the executor that database calls go through); 429 with
    ``Retry-After`` when ``DIGITS_MAX_QUEUED_PLOTS`` plots are already waiting."""
    job = await jobs.get(job_id)
    curve = await jobs.curve(job_id)
    title = f"job {job_id[:8]}: {job.name} ({job.family}), {job.status}"
    body = await plotter.draw(
        request, functools.partial(_draw, curve.losses, curve.accuracy, title, fmt)
    )
    if body is None:  # the client has gone: nobody reads this
        return Response(status_code=499)
    return Response(body, media_type="image/png" if fmt == "png" else "image/svg+xml")


@router.get(
    "/{job_id}/events",
    summary="Follow a job live (server-sent events)",
    responses={429: {"description": "too many followers; see Retry-After"}, **_JOB_RESPONSES},
    response_class=EventSourceResponse,
)
@needs(READ)
async def events(job_id: str, jobs: JobsDep, feeds: FeedsDep) -> EventSourceResponse:
    """Server-sent events: ``state`` (the job so far), ``progress`` while it runs, ``final``;
    429 past ``DIGITS_MAX_EVENT_FOLLOWERS_PER_JOB`` or ``DIGITS_MAX_EVENT_FOLLOWERS``."""
    await jobs.get(job_id)  # 404 before the stream starts
    followed = feeds.follow(job_id)  # 429 before it starts

    async def stream() -> AsyncIterator[ServerSentEvent]:
        async for event in followed:
            if event.kind == "progress":
                data = progress_event(event.job, event.curve, event.first_iteration)
            else:
                data = job_view(event.job, event.curve).model_dump(mode="json")
            yield ServerSentEvent(data=json.dumps(data), event=event.kind)

    return EventSourceResponse(stream(), ping=15)
