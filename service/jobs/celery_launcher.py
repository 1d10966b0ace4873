"""``CeleryLauncher``: the ``celery`` job backend's launcher.

``launch(job_id)`` sends ``train_job(job_id)`` to the broker (task id = job id); a Celery
worker (``service.jobs.celery_app``) runs it with the same ``run_job`` as the local backend.
Everything else goes through the shared store (``Jobs``): the cancel flag is what the
worker's fit callback polls, and the one sweeper fails a job with no progress (or over its
time limit), which ``kill`` then revokes: the worker's main process SIGKILLs the pool
process running it, even a stopped one.
Jobs keep running on their workers when the API stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from celery import Celery

from service.jobs.celery_app import TRAIN_TASK, create_celery_app
from service.settings import Settings

log = logging.getLogger(__name__)
#: How long a kill may wait for the broker.
KILL_TIMEOUT_S = 10.0


class CeleryLauncher:
    """Sends each queued job to the Celery workers through the broker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.celery: Celery | None = None

    async def start(self, on_done: Callable[[str], Awaitable[None]]) -> None:
        """Build the sending app (jobs end on the workers: ``on_done`` is never called)."""
        self.celery = create_celery_app(self.settings)

    async def launch(self, job_id: str) -> None:
        """Send the job's task; raises when the broker cannot take it."""
        if self.celery is None:
            raise RuntimeError("CeleryLauncher.launch before start")
        await asyncio.to_thread(self.celery.send_task, TRAIN_TASK, args=[job_id], task_id=job_id)

    async def kill(self, job_ids: list[str]) -> None:
        """Revoke the jobs' tasks with ``terminate``: their pool processes are SIGKILLed."""
        if self.celery is None:
            self.celery = create_celery_app(self.settings)
        revoke = self.celery.control.revoke
        try:
            await asyncio.wait_for(
                asyncio.to_thread(revoke, job_ids, terminate=True, signal="SIGKILL"),
                KILL_TIMEOUT_S,
            )
        except Exception:  # the broker's errors vary; the jobs are failed already
            log.exception("could not revoke the tasks of jobs %s", job_ids)

    async def aclose(self) -> None:
        """Close the broker connections; running jobs are left to their workers."""
        if self.celery is not None:
            await asyncio.to_thread(self.celery.close)
