"""The job store and a whole job over HTTP on a real PostgreSQL (``postgresql+psycopg://``).

Each test module run gets its own schema (dropped afterwards); the URL carries it as the
connection's ``search_path``, so worker processes that get only the URL use it too.
Skipped with the reason when PostgreSQL is unreachable, unless ``CI=true`` (then it fails).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.http.app import create_app
from service.http.routes.job_request import JobSpec
from service.jobs.records import JobStatus
from service.jobs.store import JobStore
from tests.databases import postgres_schema_url
from tests.service.jobs.conftest import (
    SHORT_LOGISTIC,
    claim_concurrently,
    job_settings,
    submit_concurrently,
    wait_job,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A SQLAlchemy URL on a fresh schema of the local ``test`` database."""
    with postgres_schema_url("jobs_test") as url:
        yield url


def test_postgres_store_claims_each_job_exactly_once(pg_url: str) -> None:
    """Eight claimers on two PostgreSQL stores claim each of 30 jobs exactly once."""
    stores = [JobStore.open(pg_url), JobStore.open(pg_url)]
    ids = set()
    for _ in range(30):
        job = stores[0].create(JobSpec(family="logistic").resolve())
        assert job is not None
        ids.add(job.id)
    claims = claim_concurrently(stores)
    claimed = [job_id for mine in claims for job_id in mine]
    assert sorted(claimed) == sorted(ids)
    assert stores[1].counts()[JobStatus.RUNNING] >= 30
    for store in stores:
        store.close()


def test_postgres_queue_bound_holds_for_20_concurrent_submitters(pg_url: str) -> None:
    """Twenty submitters on their own connections at once: exactly 16 queued, 4 refused."""
    store = JobStore.open(pg_url)
    before = store.counts()[JobStatus.QUEUED]
    assert submit_concurrently(pg_url, submitters=20, max_queued=before + 16) == 16
    assert store.counts()[JobStatus.QUEUED] == before + 16
    for job in store.list_jobs(status=JobStatus.QUEUED, limit=100)[0]:
        store.request_cancel(job.id)  # leave no queued job for the next tests
    store.close()


def test_postgres_backs_a_whole_job_over_http(
    pg_url: str, tmp_path: Path, models_dir: Path
) -> None:
    """A job submitted over HTTP runs in a worker on PostgreSQL and its curve is stored."""
    settings = job_settings(tmp_path, models_dir, database_url=pg_url, max_queued_jobs=100)
    with TestClient(create_app(settings)) as client:
        job_id = client.post("/train", json=SHORT_LOGISTIC).json()["id"]
        assert wait_job(client, job_id).status == "succeeded"
        curve = client.get(f"/train/{job_id}/curve.json").json()
        assert len(curve["loss_curve"]) == 150 * 6  # the fit on every row, 5 out-of-fold fits
        assert client.get("/train", params={"status": "succeeded"}).json()["total"] == 1


def test_stores_opened_at_once_on_an_empty_database_all_start(pg_url: str) -> None:
    """Replicas and workers starting together on a fresh schema all open their job store
    (one creates the tables, the others wait for it instead of failing at start-up)."""
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []
    with postgres_schema_url("jobs_race") as url:

        def open_store() -> None:
            barrier.wait()
            try:
                JobStore.open(url).close()
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=open_store) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        store = JobStore.open(url)
        assert store.create(JobSpec(family="logistic").resolve()) is not None
        store.close()
