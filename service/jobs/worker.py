"""``run_job``: what a worker process does with one job, local or Celery.

From the database URL, the folders and the job id: read the resolved job, fit it with
``training.pipeline.fit_calibrated`` (progress, cancel and the time limit checked in the
``on_step`` callback), publish it (``publish.py``), apply the promotion gate and record the
outcome. It never raises for a failed fit: the job says why.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from sqlalchemy.exc import OperationalError

from service.db import make_engine
from service.errors import database_failure, public_message
from service.inference.artifact_store import VersionStore
from service.inference.repository import ModelRepository
from service.inference.validation import stored_accuracy, validation_rows
from service.jobs.liveness import new_owner
from service.jobs.publish import publish
from service.jobs.records import JobRecord, JobStatus
from service.jobs.store import JobStore
from service.rollout.aliases import AliasStore
from service.rollout.gate import Gate
from service.rollout.promotion import promote_job_version
from training.data import Split, load_split
from training.fit import STOP, FitResult, Step
from training.pipeline import Fitted, fit_calibrated

log = logging.getLogger(__name__)

#: Seconds between progress writes (which also read the cancel flag): the stop latency.
PROGRESS_INTERVAL_S = 0.2
CANCELLED = "cancelled"
#: Waits before each retry of a progress write the store refused (about 6 s in all); a
#: fault that outlasts them stops the fit, and the job ends ``failed`` with its cause.
RETRY_DELAYS_S = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
#: How long the final ``failed`` write of a job is retried (every 0.5 s) before giving up.
FINAL_WRITE_S = 600.0

T = TypeVar("T")


def with_retries(write: Callable[[], T], delays: tuple[float, ...] = RETRY_DELAYS_S) -> T:
    """``write()``, retried after each of ``delays`` while the store raises
    ``OperationalError`` (disk full, connection lost); the last error is raised."""
    for delay in delays:
        try:
            return write()
        except OperationalError as exc:
            log.warning("job store write failed (%s); retrying in %.1f s", exc.orig, delay)
            time.sleep(delay)
    return write()


#: Linux ``prctl`` option: the signal the kernel sends a process when its parent dies.
_PR_SET_PDEATHSIG = 1
#: How often the watchdog checks that the parent process is still there.
PARENT_CHECK_S = 1.0


def init_worker_process(nice: int, parent: int) -> None:
    """Process-pool initializer: one torch thread per worker (the API keeps the others),
    ``nice`` added to its niceness so a fit yields the CPU to the predict path, Ctrl-C left
    to the parent (which stops its workers), and death with the parent (pid ``parent``), even
    by ``kill -9``: the kernel's parent-death signal on Linux, and everywhere a watchdog thread
    that exits once this process has another parent (as it has at once when the parent died
    before the signal was armed, while this process was still importing)."""
    torch.set_num_threads(1)
    if nice:
        os.nice(nice)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked by the spawner
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    watch = threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True)
    watch.start()


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)


def warm_up() -> None:
    """Import and load what a job needs, so the first job of a fresh process starts fast:
    the lecture's split and the gate's validation rows."""
    _split()
    validation_rows()


@functools.cache
def _split() -> Split:
    # Immutable and ~0.5 s to build: load once per worker process (a fit carves the
    # validation rows out of its training rows itself, ``fit_calibrated``).
    return load_split()


class ProgressRecorder:
    """The ``on_step`` callback: buffers the curve and writes it every ``interval`` seconds;
    returns ``STOP`` once the store says a cancel was requested."""

    def __init__(self, store: JobStore, job: JobRecord, owner: str, interval: float) -> None:
        self.store, self.job_id, self.owner, self.interval = store, job.id, owner, interval
        self.losses: list[float] = []
        #: The last step seen (the out-of-fold fits run on after the fit's own steps).
        self.last: tuple[int, float] = (0, 0.0)
        self.accuracy: list[dict[str, float]] = []
        self.written = (0, 0)  # losses, accuracy points already in the store
        self.last_write = time.monotonic()
        self.stop_reason: str | None = None
        self.stopped = False
        self.time_limit_s = job.spec.time_limit_s
        #: Why the store could not record progress, when it could not: the job's error.
        self.store_error: str | None = None

    def __call__(self, step: Step) -> bool:
        self.losses.append(step.loss)
        self.last = (step.iteration, step.elapsed)
        if step.accuracy is not None:
            self.accuracy.append(dataclasses.asdict(step.accuracy))
        if time.monotonic() - self.last_write >= self.interval or step.iteration == step.total:
            self.flush(step.iteration, step.elapsed)
        if self.time_limit_s is not None and step.elapsed > self.time_limit_s and not self.stopped:
            self.stopped = True
            self.stop_reason = (
                f"time limit: the fit ran over job_time_limit_s = {self.time_limit_s:g} s"
            )
        return STOP if self.stopped else not STOP

    def flush(self, iteration: int, elapsed: float) -> None:
        """Write the buffered points and read the cancel flag."""
        losses, accuracy = self.losses[self.written[0] :], self.accuracy[self.written[1] :]
        try:
            stop, reason = with_retries(
                lambda: self.store.record_progress(
                    self.job_id,
                    self.owner,
                    iteration=iteration,
                    elapsed=elapsed,
                    losses=losses,
                    accuracy=accuracy,
                )
            )
        except OperationalError as exc:
            log.warning("job %s: the job store could not record progress: %s", self.job_id, exc)
            self.store_error = f"{database_failure(exc)}: the job store could not record progress"
            self.stopped = True
            return
        self.written = (len(self.losses), len(self.accuracy))
        self.last_write = time.monotonic()
        if stop and not self.stopped:
            self.stopped, self.stop_reason = True, reason

    def finish(self, result: FitResult) -> None:
        """Write what the fit recorded after the last step (the cancelled fit's accuracy)."""
        self.accuracy += map(dataclasses.asdict, result.accuracy[len(self.accuracy) :])
        self.flush(*max(self.last, (result.iterations, result.fit_seconds)))


def _fail_when_writable(store: JobStore, job_id: str, owner: str, error: str) -> None:
    """End the job ``failed`` with ``error`` as soon as the store takes the write."""
    log.error("job %s: %s", job_id, error)
    with_retries(
        lambda: store.finish(job_id, owner, JobStatus.FAILED, error=error),
        delays=(0.5,) * int(FINAL_WRITE_S / 0.5),
    )


#: What a job's ``metrics`` keep of its fit (``fit_seconds`` rounded to the millisecond).
_METRICS = ("train_accuracy", "test_accuracy", "final_loss", "fit_seconds", "iterations")


@dataclasses.dataclass(frozen=True)
class _Run:
    """One job run here: the store, the job ``owner`` holds, where its version goes (the
    repository's runtime folder, and the version store if there is one)."""

    store: JobStore
    job: JobRecord
    owner: str
    repository: ModelRepository
    versions: VersionStore | None

    def fit_and_publish(self, interval: float) -> JobStatus:
        store, job, owner = self.store, self.job, self.owner
        recorder = ProgressRecorder(store, job, owner, interval)
        # Fitted on every training row, 5 more fits on folds for the out-of-fold temperature
        # and held-out accuracy (the gate's figure), the temperature folded in (calibrated).
        spec, recipe = job.spec.fit_spec()
        fitted = fit_calibrated(spec, _split(), recipe, on_step=recorder)
        result = fitted.result
        if recorder.store_error is not None:
            _fail_when_writable(store, job.id, owner, recorder.store_error)
            return JobStatus.FAILED
        recorder.finish(result)
        metrics: dict[str, Any] = {k: getattr(result, k) for k in _METRICS}
        metrics["fit_seconds"] = round(result.fit_seconds, 3)
        if result.cancelled:
            reason = recorder.stop_reason
            status = JobStatus.CANCELLED if reason is None else JobStatus.FAILED
            store.finish(job.id, owner, status, metrics=metrics, error=reason)
            return status
        self.publish(fitted, metrics)
        return JobStatus.SUCCEEDED

    def publish(self, fitted: Fitted, metrics: dict[str, Any]) -> None:
        """Publish the fitted model as the job's next version (``publish.py``), gate and
        promote it as the job asked, and end the job ``succeeded`` with ``metrics``."""
        job = self.job
        manifest = publish(fitted, self.repository, job.name, job.spec.recipe, self.versions)
        metrics["test_errors"] = manifest.metrics.test_errors
        gate = Gate(stored_accuracy(self.repository, manifest.name), job.spec.gate_tolerance)
        metrics["promotion"] = promote_job_version(
            AliasStore(self.store.engine), manifest.name, manifest.version, gate,
            job_id=job.id, requested=job.promote,
        )  # fmt: skip
        model = (manifest.name, manifest.version)
        self.store.finish(job.id, self.owner, JobStatus.SUCCEEDED, metrics=metrics, model=model)


def run_job(
    database_url: str,
    models_dir: str | Path,
    job_id: str,
    owner: str | None = None,
    *,
    versions_dir: str | Path | None = None,
    versions_url: str | None = None,
    progress_interval: float = PROGRESS_INTERVAL_S,
) -> str:
    """Run job ``job_id`` to its end in this process; returns its final status.

    ``owner``: the claimant that already holds the job (the local runner claims before it
    hands the job over); ``None`` claims it here (a Celery task). A job that is not queued
    and not held by ``owner`` is left alone (another worker has it, or it was cancelled):
    that is what makes a redelivered task harmless. ``versions_url``: the version store
    (``s3://...``), if any (``versions_dir`` is then its local cache).
    """
    owner = owner or new_owner()
    store = JobStore(make_engine(database_url))  # the API migrated the store
    try:
        job = store.start(job_id, owner, os.getpid())
        if job is None:
            log.info("job %s is not ours to run; refusing it", job_id)
            return store.get(job_id).status.value
        try:
            runtime = None if versions_dir is None else Path(versions_dir)
            repository = ModelRepository(Path(models_dir), runtime)
            versions = VersionStore(versions_url) if versions_url else None
            run = _Run(store, job, owner, repository, versions)
            status = run.fit_and_publish(progress_interval)
        except Exception as exc:  # the one catch-all: any failure of a fit fails its job
            log.exception("job %s failed", job_id)
            error = public_message(exc)
            store.finish(job_id, owner, JobStatus.FAILED, error=error)
            return JobStatus.FAILED.value
        return status.value
    finally:
        store.close()
