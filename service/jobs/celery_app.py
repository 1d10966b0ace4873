"""The Celery side of the ``celery`` job backend: ``celery -A service.jobs.celery_app worker``.

``create_celery_app(settings)`` builds a Celery app on ``settings.celery_broker_url`` whose one
task, ``train_job(job_id)``, calls the same ``run_job`` as the local backend: the job row,
its curve and its cancel flag live in the shared store (``settings.database_url``), the new
version goes into the shared ``settings.versions_dir``. The API sends the task by name with its
own app (``CeleryLauncher``'s ``sender_app``: no task registered, no torch imported); the
worker finds ``app`` here, built from the environment on first access (PEP 562), so
importing this module has no side effect.

When a worker dies mid-job (see docs/deployment.md, "what happens when a worker dies"):

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a job's message is acknowledged only
  once the task returns; if the pool process running it is killed, the message goes back to
  the queue and is redelivered at once. The redelivered task finds the job ``running`` under
  the dead attempt's owner and refuses it at once (``run_job`` runs only a job it claims):
  a job that kills its worker (out of memory, say) must not take down worker after worker,
  and a client that saw progress should not see the curve restart. Resubmitting is one call.
- The job itself is failed by the one liveness rule (``service.jobs.liveness``): its progress
  stops, and the API's sweeper fails it after ``job_stall_s`` without progress and revokes
  its task (``CeleryLauncher.kill``: a hung or stopped pool process is SIGKILLed). The same
  holds when the whole worker is killed (Redis keeps the message until
  ``VISIBILITY_TIMEOUT_S``; redelivered then, it finds its job finished and is dropped).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from celery import Celery, Task

from service.db import open_database
from service.jobs.celery_launcher import TRAIN_TASK, sender_app
from service.jobs.worker import run_job, warm_up
from service.settings import Settings

log = logging.getLogger(__name__)


def create_celery_app(settings: Settings) -> Celery:
    """A Celery app for ``settings`` with the ``train_job`` task registered (the worker's;
    the API sends with ``celery_launcher.sender_app``, which imports no torch)."""
    app = sender_app(settings)

    @app.task(name=TRAIN_TASK, bind=True)
    def train_job(self: Task[Any, Any], job_id: str) -> str:
        """Run training job ``job_id`` from the shared store; returns its status."""
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
