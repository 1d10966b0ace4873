"""The job store on its own: exactly-once claims across stores, cancel rules, thinning."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.errors import JobNotCancellable
from service.http.routes.job_request import JobSpec
from service.http.routes.job_views import MAX_CURVE_POINTS, thin
from service.jobs.records import JobStatus
from service.jobs.store import JobStore
from tests.service.jobs.conftest import claim_concurrently, submit_concurrently


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A SQLite job store in a folder that does not exist yet (the store creates it)."""
    return f"sqlite:///{tmp_path / 'var' / 'jobs.db'}"


def test_two_stores_on_one_database_claim_each_job_exactly_once(url: str) -> None:
    """Eight claimers on two stores (separate connection pools) never claim a job twice."""
    stores = [JobStore.open(url), JobStore.open(url)]
    ids = {stores[0].create(JobSpec(family="logistic").resolve()).id for _ in range(40)}  # type: ignore[union-attr]
    claims = claim_concurrently(stores)
    claimed = [job_id for mine in claims for job_id in mine]
    assert sorted(claimed) == sorted(ids)
    for i, mine in enumerate(claims):
        assert all(stores[0].get(job_id).owner == f"owner-{i}" for job_id in mine)


def test_a_claimed_job_cannot_be_claimed_or_started_by_another_owner(url: str) -> None:
    """The second claimant of a job is refused, and ``start`` leaves the job to its holder."""
    store = JobStore.open(url)
    job = store.create(JobSpec(family="logistic").resolve())
    assert job is not None
    assert store.claim(job.id, "a")
    assert not store.claim(job.id, "b")
    assert store.start(job.id, "b", pid=1) is None
    started = store.start(job.id, "a", pid=123)
    assert started is not None
    assert started.worker_pid == 123


def test_progress_appends_curve_chunks_and_reports_a_cancel(url: str) -> None:
    """Progress writes append to the curve; after a cancel request they say stop."""
    store = JobStore.open(url)
    job = store.create(JobSpec(family="logistic").resolve())
    assert job is not None
    store.claim(job.id, "me")
    point = {"iteration": 2, "train": 0.5, "test": 0.4}
    first = store.record_progress(
        job.id, "me", iteration=2, elapsed=0.1, losses=[2.0, 1.5], accuracy=[point]
    )
    assert first == (False, None)
    assert store.request_cancel(job.id).cancel_requested
    second = store.record_progress(
        job.id, "me", iteration=3, elapsed=0.2, losses=[1.0], accuracy=[]
    )
    assert second == (True, None)
    assert store.record_progress(job.id, "other", iteration=3, elapsed=0.2, losses=[], accuracy=[])[
        0
    ]
    curve = store.curve(job.id)
    assert curve.losses == [2.0, 1.5, 1.0]
    assert curve.accuracy == [point]
    assert store.curve(job.id, after_seq=curve.last_seq).losses == []
    assert store.finish(job.id, "me", JobStatus.CANCELLED)
    with pytest.raises(JobNotCancellable):
        store.request_cancel(job.id)


def test_queue_bound_refuses_jobs_beyond_max_queued(url: str) -> None:
    """``create`` returns None once ``max_queued`` jobs are waiting."""
    store = JobStore.open(url)
    assert store.create(JobSpec(family="fnn").resolve(), max_queued=2) is not None
    assert store.create(JobSpec(family="fnn").resolve(), max_queued=2) is not None
    assert store.create(JobSpec(family="fnn").resolve(), max_queued=2) is None
    assert store.counts()[JobStatus.QUEUED] == 2


def test_queue_bound_holds_for_20_concurrent_submitters(url: str) -> None:
    """Twenty submitters on their own connections at once: exactly 16 queued, 4 refused."""
    JobStore.open(url).close()  # the tables exist before the race, as they do in a running service
    assert submit_concurrently(url, submitters=20, max_queued=16) == 16
    assert JobStore.open(url).counts()[JobStatus.QUEUED] == 16


def test_thinning_keeps_at_most_1000_means_ending_at_the_last_iteration() -> None:
    """A 20,000-point curve is shown as 1,000 means of 20 losses; short curves stay whole."""
    losses = [float(i) for i in range(20_000)]
    view = thin(losses)
    assert len(view.values) == MAX_CURVE_POINTS
    assert view.stride == 20
    assert view.iterations[-1] == 20_000
    assert view.values[0] == sum(range(20)) / 20
    short = thin([3.0, 2.0, 1.0])
    assert (short.iterations, short.values, short.stride) == ([1, 2, 3], [3.0, 2.0, 1.0], 1)
