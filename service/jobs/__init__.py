"""Training jobs: ``Jobs(store, launcher)``; a ``ResolvedJob`` in, a persistent ``JobRecord`` out.

Modules: ``request`` (the HTTP body ``JobSpec``), ``records`` (``ResolvedJob``, ``JobStatus``,
``JobRecord``, ``Curve``), ``tables`` (the SQL tables), ``store`` (``JobStore`` over SQLAlchemy
Core), ``liveness`` (the liveness rule and its sweeper), ``runner`` (``Jobs`` and the
``Launcher`` protocol), ``local`` (``LocalLauncher``), ``celery_launcher`` / ``celery_app``
(the Celery backend), ``worker`` (``run_job``, what a worker process does), ``cost`` (a job's
estimated cost), ``feeds`` (one poll per followed job, and the bounds on its followers),
``metrics``.
The JSON views and the plots live with the routes (``service/http/routes/job_views.py``,
``service/http/routes/train.py``). ``open_job_runner(settings, ...)`` builds what the settings
name.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from service.jobs.local import LocalLauncher
from service.jobs.metrics import JobMetrics
from service.jobs.records import JobRecord, JobStatus, ResolvedJob
from service.jobs.request import JobSpec
from service.jobs.runner import Jobs, Launcher
from service.jobs.store import JobStore
from service.settings import Settings

__all__ = [
    "JobRecord",
    "JobSpec",
    "JobStatus",
    "JobStore",
    "Jobs",
    "Launcher",
    "LocalLauncher",
    "ResolvedJob",
    "open_job_runner",
]


@contextlib.asynccontextmanager
async def open_job_runner(
    settings: Settings,
    engine: Engine,
    refresh: Callable[[], Awaitable[object]],
    metrics_registry: CollectorRegistry | None = None,
) -> AsyncIterator[Jobs]:
    """The job store (on the lifespan's ``engine``) and the launcher the settings name, as
    ``Jobs``, for the app's lifespan."""
    store = JobStore(engine)
    launcher: Launcher
    if settings.job_backend == "celery":
        # Imported here: Celery and its broker client cost ~0.3 s and ~20 MB at start-up.
        from service.jobs.celery_launcher import CeleryLauncher

        launcher = CeleryLauncher(settings)
    else:
        launcher = LocalLauncher(
            store,
            models_dir=settings.models_dir,
            versions_dir=settings.versions_dir,
            versions_url=settings.versions_url,
            max_running=settings.max_running_jobs,
            nice=settings.job_nice,
        )
    jobs = Jobs(
        store,
        launcher,
        max_queued=settings.max_queued_jobs,
        refresh=refresh,
        metrics=JobMetrics(metrics_registry),
        stall_s=settings.job_stall_s,
    )
    async with jobs:
        yield jobs
