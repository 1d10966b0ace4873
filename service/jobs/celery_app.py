"""The ``celery`` job backend: ``CeleryLauncher`` in the API, the worker's app in
``celery -A service.jobs.celery_app worker``.

The API sends ``train_job(job_id)`` by name (task id = job id) with an app that registers no
task; the worker's app (``app``, built from the environment on first access, PEP 562) runs it
with the same ``run_job`` as the local backend on the shared store, importing the training
stack (torch) only in its processes: importing this module imports no torch. ``kill`` revokes
a task with SIGKILL (a hung or stopped pool process too); jobs keep running on their workers
when the API stops. What happens when a worker dies, and why a redelivered task refuses its
job: docs/deployment.md, "Jobs on Celery".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from celery import Celery, Task

from service.db import open_database
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
    ``train_job`` by name with (``create_celery_app`` adds the task for the worker)."""
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


def create_celery_app(settings: Settings) -> Celery:
    """A Celery app for ``settings`` with the ``train_job`` task registered (the worker's;
    the API sends with ``sender_app``)."""
    app = sender_app(settings)

    @app.task(name=TRAIN_TASK, bind=True)
    def train_job(self: Task[Any, Any], job_id: str) -> str:
        """Run training job ``job_id`` from the shared store; returns its status."""
        from service.jobs.worker import run_job  # the training stack: torch

        return run_job(
            settings.database_url,
            Path(settings.models_dir),
            job_id,
            versions_dir=settings.versions_dir,
            versions_url=settings.versions_url,
        )

    return app


def _build_from_environment() -> Celery:
    """The worker's app: settings from the environment, the training data loaded early."""
    settings = Settings()
    # The same engine code and migration as the API's: a worker started first migrates the
    # store (under the lock), or refuses it when it is behind and migration is off.
    open_database(settings.database_url, auto_migrate=settings.db_auto_migrate).dispose()
    app = create_celery_app(settings)

    from celery.signals import worker_process_init

    @worker_process_init.connect(weak=False)
    def _init_process(**_: Any) -> None:
        import torch

        from service.jobs.worker import warm_up

        torch.set_num_threads(settings.torch_threads)
        warm_up()

    return app


def __getattr__(name: str) -> Celery:
    # The celery CLI looks for ``app`` in this module; build it on that first access only.
    if name == "app":
        app = _build_from_environment()
        globals()["app"] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
