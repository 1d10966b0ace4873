"""The celery backend's worker-death rules, on a SQLite store (no broker or worker needed)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from service.http.routes.job_request import JobSpec
from service.jobs.celery_app import CeleryLauncher
from service.jobs.records import JobStatus
from service.jobs.runner import Jobs
from service.jobs.store import JobStore
from service.jobs.worker import run_job
from service.settings import Settings
from tests.service.jobs.conftest import age_heartbeat

SPEC = JobSpec(family="logistic", hyperparameters={"iterations": 5}).resolve()


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore.open(f"sqlite:///{tmp_path / 'jobs.db'}")


def running_job(store: JobStore, owner: str, heartbeat_age: float) -> str:
    """A job claimed by ``owner`` whose last heartbeat is ``heartbeat_age`` seconds old."""
    job = store.create(SPEC)
    assert job is not None
    assert store.claim(job.id, owner)
    age_heartbeat(store, job.id, heartbeat_age)
    return job.id


def test_sweep_fails_running_job_whose_worker_fell_silent(store: JobStore, tmp_path: Path) -> None:
    """A job of another host with no progress for longer than the stall limit is failed (and
    its task revoked); one that progressed recently is kept."""
    silent = running_job(store, "other-host:7:aaaa", 31)
    alive = running_job(store, "other-host:8:bbbb", 1)
    settings = Settings(database_url=store.url, _env_file=None)  # type: ignore[call-arg]

    async def refresh() -> None:
        return None

    # One sweep, called directly: entering Jobs would also start its background sweeper,
    # which could sweep first and leave this call nothing to report.
    jobs = Jobs(store, CeleryLauncher(settings), max_queued=4, refresh=refresh, stall_s=30)
    assert asyncio.run(jobs.sweep()) == [silent]
    assert store.get(silent).status is JobStatus.FAILED
    assert str(store.get(silent).error).startswith("no progress for 31 s")
    assert store.get(alive).status is JobStatus.RUNNING


def test_a_redelivered_task_refuses_a_job_another_attempt_holds_at_once(
    store: JobStore, tmp_path: Path
) -> None:
    """The task redelivered while an earlier attempt holds the job returns at once, without
    polling, and leaves the job to the liveness rule instead of running it twice."""
    job_id = running_job(store, "earlier-attempt", 0)
    started = time.monotonic()
    assert run_job(store.url, tmp_path, job_id) == JobStatus.RUNNING
    assert time.monotonic() - started < 5
    job = store.get(job_id)
    assert (job.status, job.owner, job.iteration) == (JobStatus.RUNNING, "earlier-attempt", 0)


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
        async with Jobs(store, CeleryLauncher(settings), max_queued=4, refresh=refresh) as jobs:
            return (await jobs.submit(SPEC)).status

    assert asyncio.run(submit()) is JobStatus.FAILED
