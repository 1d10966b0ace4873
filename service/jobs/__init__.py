"""Training jobs: ``Jobs(store, launcher)`` takes a ``ResolvedJob`` and keeps a ``JobRecord``.

The modules, and the HTTP side (the request body, the views, the event feeds), are listed in
docs/train.md; ``open_job_runner(settings, ...)`` builds what the settings name.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from service.jobs.local import LocalLauncher
from service.jobs.metrics import JobMetrics
from service.jobs.runner import Jobs, Launcher
from service.jobs.store import JobStore
from service.settings import Settings

__all__ = ["Jobs", "open_job_runner"]


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
        from service.jobs.celery_app import CeleryLauncher

        launcher = CeleryLauncher(settings)
    else:
        launcher = LocalLauncher(store, settings)
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
