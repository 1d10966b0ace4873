"""The celery backend's worker-death rules, on a SQLite store (no broker or worker needed)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from service.jobs.celery_app import STALE_AFTER_S, WORKER_LOST, _previous_attempt_lost
from service.jobs.celery_runner import CeleryJobRunner
from service.jobs.models import JobSpec, JobStatus, jobs_table
from service.jobs.store import JobStore
from service.settings import Settings

SPEC = JobSpec(family="logistic", hyperparameters={"iterations": 5})


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")


def running_job(store: JobStore, owner: str, heartbeat_age: float) -> str:
    """A job claimed by ``owner`` whose last heartbeat is ``heartbeat_age`` seconds old."""
    job = store.create(SPEC)
    assert job is not None
    assert store.claim(job.id, owner)
    with store.engine.begin() as conn:
        conn.execute(
            update(jobs_table)
            .where(jobs_table.c.id == job.id)
            .values(heartbeat_at=time.time() - heartbeat_age)
        )
    return job.id


def dead_pid() -> int:
    """The pid of a process of this host that has exited."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(proc.stdout)


def test_sweep_fails_running_job_whose_worker_fell_silent(store: JobStore, tmp_path: Path) -> None:
    """A job of another host silent for longer than STALE_AFTER_S is failed; a live one is kept."""
    silent = running_job(store, "other-host:7:aaaa", STALE_AFTER_S + 1)
    alive = running_job(store, "other-host:8:bbbb", 1)
    settings = Settings(database_url=store.url, _env_file=None)  # type: ignore[call-arg]

    async def refresh() -> None:
        return None

    # One sweep, called directly: entering the runner would also start its background
    # sweeper, which could sweep first and leave this call nothing to report.
    runner = CeleryJobRunner(store, settings=settings, max_queued=4, refresh=refresh)
    assert asyncio.run(runner.sweep()) == [silent]
    assert store.get(silent).status is JobStatus.FAILED
    assert store.get(silent).error is not None
    assert store.get(alive).status is JobStatus.RUNNING


def test_redelivered_task_fails_job_of_a_dead_pool_process(store: JobStore) -> None:
    """The task redelivered after its pool process died marks the job failed, not re-run."""
    job_id = running_job(store, f"{socket.gethostname()}:{dead_pid()}:cccc", 0)
    assert _previous_attempt_lost(store.url, job_id)
    job = store.get(job_id)
    assert job.status is JobStatus.FAILED
    assert job.error == WORKER_LOST


def test_task_of_a_queued_job_runs_it(store: JobStore) -> None:
    """A first delivery (the job still queued) is not mistaken for a lost attempt."""
    job = store.create(SPEC)
    assert job is not None
    assert not _previous_attempt_lost(store.url, job.id)
    assert store.get(job.id).status is JobStatus.QUEUED


def test_submit_fails_the_job_when_the_broker_is_down(store: JobStore) -> None:
    """With no broker listening, the job row ends failed with the reason (no silent queue)."""
    settings = Settings(
        database_url=store.url,
        celery_broker_url="redis://127.0.0.1:1/0",
        _env_file=None,  # type: ignore[call-arg]
    )

    async def refresh() -> None:
        return None

    async def submit() -> JobStatus:
        async with CeleryJobRunner(store, settings=settings, max_queued=4, refresh=refresh) as r:
            return (await r.submit(SPEC)).status

    assert asyncio.run(submit()) is JobStatus.FAILED
