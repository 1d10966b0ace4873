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
from typing import Any

from celery import Celery

from service.settings import Settings

log = logging.getLogger(__name__)

TRAIN_TASK = "digits.train_job"
#: How long Redis keeps a delivered, unacknowledged message before handing it out again.
#: Longer than any job may run, so a long job is never delivered twice while it runs.
VISIBILITY_TIMEOUT_S = 12 * 3600


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery settings shared by the API (sender) and the worker."""
    return {
        "broker_url": settings.celery_broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT_S},
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,  # a worker holds one job, the others stay queued
        "task_ignore_result": True,  # the job store is the result
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_hijack_root_logger": True,
    }


def sender_app(settings: Settings) -> Celery:
    """A Celery app on ``settings``' broker with no task registered: what the API sends
    ``train_job`` by name with (the worker's app, ``celery_app.create_celery_app``, adds the
    task and imports torch)."""
    app = Celery("digits", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


#: How long a kill may wait for the broker.
KILL_TIMEOUT_S = 10.0


class CeleryLauncher:
    """Sends each queued job to the Celery workers through the broker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.celery: Celery | None = None
        self.unavailable: str | None = None  # the workers have torch: their image does

    async def start(self, on_done: Callable[[str], Awaitable[None]]) -> None:
        """Build the sending app (jobs end on the workers: ``on_done`` is never called)."""
        self.celery = sender_app(self.settings)

    async def launch(self, job_id: str) -> None:
        """Send the job's task; raises when the broker cannot take it."""
        if self.celery is None:
            raise RuntimeError("CeleryLauncher.launch before start")
        await asyncio.to_thread(self.celery.send_task, TRAIN_TASK, args=[job_id], task_id=job_id)

    async def kill(self, job_ids: list[str]) -> None:
        """Revoke the jobs' tasks with ``terminate``: their pool processes are SIGKILLed."""
        if self.celery is None:
            self.celery = sender_app(self.settings)
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
