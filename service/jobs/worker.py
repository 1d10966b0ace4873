"""``run_job``: what a worker process does with one job, whatever started it.

The local runner calls it in a process of its pool; the Celery backend's task calls the same
function. It needs only the database URL, the models folder and the job id: it reads the
resolved spec from the store, fits with ``training.fit.train``, reports progress and checks
for a cancel from the ``on_step`` callback, publishes through ``training.export.export`` (the
CLI's code) and records the outcome. It never raises for a failed fit: the job says why.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch

from service.jobs.models import JobRecord, JobStatus
from service.jobs.store import JobStore, new_owner
from service.repository import ModelRepository
from training.data import Split, load_split
from training.export import export
from training.fit import STOP, FitResult, Step, train
from training.models import ModelSpec
from training.recipes import Recipe

log = logging.getLogger(__name__)

#: Seconds between progress writes (which also read the cancel flag): the stop latency.
PROGRESS_INTERVAL_S = 0.2
CANCELLED = "cancelled"


def init_worker_process(nice: int = 0) -> None:
    """Process-pool initializer: one torch thread per worker (the API keeps the others), and
    ``nice`` added to its niceness so a fit yields the CPU to the predict path."""
    torch.set_num_threads(1)
    if nice:
        os.nice(nice)


def warm_up() -> None:
    """Import and load what a job needs, so the first job of a fresh process starts fast."""
    _split()


@functools.cache
def _split() -> Split:
    # Immutable and ~0.5 s to build: load once per worker process.
    return load_split()


class ProgressRecorder:
    """The ``on_step`` callback: buffers the curve and writes it every ``interval`` seconds;
    returns ``STOP`` once the store says a cancel was requested."""

    def __init__(self, store: JobStore, job: JobRecord, owner: str, interval: float) -> None:
        self.store, self.job_id, self.owner, self.interval = store, job.id, owner, interval
        self.losses: list[float] = []
        self.accuracy: list[dict[str, float]] = []
        self.written = (0, 0)  # losses, accuracy points already in the store
        self.last_write = time.monotonic()
        self.stop_reason: str | None = None
        self.stopped = False

    def __call__(self, step: Step) -> bool:
        self.losses.append(step.loss)
        if step.accuracy is not None:
            a = step.accuracy
            self.accuracy.append({"iteration": a.iteration, "train": a.train, "test": a.test})
        if time.monotonic() - self.last_write >= self.interval or step.iteration == step.total:
            self.flush(step.iteration, step.elapsed)
        return STOP if self.stopped else not STOP

    def flush(self, iteration: int, elapsed: float) -> None:
        """Write the buffered points and read the cancel flag."""
        losses, accuracy = self.losses[self.written[0] :], self.accuracy[self.written[1] :]
        stop, reason = self.store.record_progress(
            self.job_id,
            self.owner,
            iteration=iteration,
            elapsed=elapsed,
            losses=losses,
            accuracy=accuracy,
        )
        self.written = (len(self.losses), len(self.accuracy))
        self.last_write = time.monotonic()
        if stop and not self.stopped:
            self.stopped, self.stop_reason = True, reason

    def finish(self, result: FitResult) -> None:
        """Write what the fit recorded after the last step (the cancelled fit's accuracy)."""
        for point in result.accuracy[len(self.accuracy) :]:
            self.accuracy.append(
                {"iteration": point.iteration, "train": point.train, "test": point.test}
            )
        self.flush(result.iterations, result.fit_seconds)


def _fit_and_publish(
    store: JobStore, job: JobRecord, owner: str, repository: ModelRepository, interval: float
) -> JobStatus:
    spec = ModelSpec.from_dict(job.spec["architecture"])
    recipe = Recipe(**job.spec["recipe"])
    split = _split()
    recorder = ProgressRecorder(store, job, owner, interval)
    model, result = train(spec, split, recipe, on_step=recorder)
    recorder.finish(result)
    metrics: dict[str, Any] = {
        "train_accuracy": result.train_accuracy,
        "test_accuracy": result.test_accuracy,
        "final_loss": result.final_loss,
        "fit_seconds": round(result.fit_seconds, 3),
        "iterations": result.iterations,
    }
    if result.cancelled:
        reason = recorder.stop_reason
        status = JobStatus.CANCELLED if reason is None else JobStatus.FAILED
        store.finish(job.id, owner, status, metrics=metrics, error=reason)
        return status
    manifest = export(
        model,
        spec=spec,
        recipe=recipe,
        recipe_name=job.spec["request"]["recipe"],
        split=split,
        result=result,
        models_dir=repository.writable,
        name=job.name,
        after_version=repository.highest_version(job.name),
    )
    if job.promote:
        repository.set_default(manifest.name, manifest.version)
    metrics["test_errors"] = manifest.metrics.test_errors
    store.finish(
        job.id,
        owner,
        JobStatus.SUCCEEDED,
        metrics=metrics,
        model=(manifest.name, manifest.version),
    )
    return JobStatus.SUCCEEDED


def run_job(
    database_url: str,
    models_dir: str | Path,
    job_id: str,
    owner: str | None = None,
    *,
    versions_dir: str | Path | None = None,
    progress_interval: float = PROGRESS_INTERVAL_S,
) -> str:
    """Run job ``job_id`` to its end in this process; returns its final status.

    ``owner``: the claimant that already holds the job (the local runner claims before it
    hands the job over); ``None`` claims it here (a Celery task). A job that is not queued
    and not held by ``owner`` is left alone (another worker has it, or it was cancelled):
    that is what makes a redelivered task harmless.
    """
    owner = owner or new_owner()
    store = JobStore(database_url, create=False)
    try:
        job = store.start(job_id, owner, os.getpid())
        if job is None:
            log.info("job %s is not ours to run; skipping", job_id)
            return store.get(job_id).status.value
        try:
            runtime = None if versions_dir is None else Path(versions_dir)
            repository = ModelRepository(Path(models_dir), runtime)
            status = _fit_and_publish(store, job, owner, repository, progress_interval)
        except Exception as exc:  # the one catch-all: any failure of a fit fails its job
            log.exception("job %s failed", job_id)
            store.finish(job_id, owner, JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
            return JobStatus.FAILED.value
        return status.value
    finally:
        store.close()
