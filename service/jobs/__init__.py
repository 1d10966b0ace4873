"""Training jobs: ``JobSpec`` in, a persistent ``JobRecord`` out, run by a ``JobRunner``.

Modules: ``request`` (the HTTP body ``JobSpec``), ``records`` (``JobStatus``, ``JobRecord``,
``Curve``), ``tables`` (the SQL tables), ``store`` (``JobStore`` over SQLAlchemy Core),
``worker`` (``run_job``, what a worker process does), ``runner`` (the ``JobRunner`` protocol
and ``LocalJobRunner``), ``cost`` (a job's estimated cost), ``views`` (the JSON views),
``metrics``.
``open_job_runner(settings, ...)`` picks the backend the settings name.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from prometheus_client import CollectorRegistry

from service.jobs.metrics import JobMetrics
from service.jobs.records import JobRecord, JobStatus
from service.jobs.request import JobSpec
from service.jobs.runner import JobRunner, LocalJobRunner
from service.jobs.store import JobStore
from service.settings import Settings

__all__ = [
    "JobRecord",
    "JobRunner",
    "JobSpec",
    "JobStatus",
    "JobStore",
    "LocalJobRunner",
    "open_job_runner",
]


@contextlib.asynccontextmanager
async def open_job_runner(
    settings: Settings,
    refresh: Callable[[], Awaitable[object]],
    metrics_registry: CollectorRegistry | None = None,
) -> AsyncIterator[JobRunner]:
    """The job store and runner the settings describe, open for the app's lifespan."""
    store = await asyncio.to_thread(JobStore, settings.database_url)
    try:
        runner: JobRunner
        if settings.job_backend == "celery":
            # Imported here: Celery and its broker client cost ~0.3 s and ~20 MB at start-up.
            from service.jobs.celery_runner import CeleryJobRunner

            runner = CeleryJobRunner(
                store,
                settings=settings,
                max_queued=settings.max_queued_jobs,
                refresh=refresh,
                metrics=JobMetrics(metrics_registry),
            )
        else:
            runner = LocalJobRunner(
                store,
                models_dir=settings.models_dir,
                max_running=settings.max_running_jobs,
                max_queued=settings.max_queued_jobs,
                refresh=refresh,
                metrics=JobMetrics(metrics_registry),
                nice=settings.job_nice,
            )
        async with runner:
            yield runner
    finally:
        store.close()
