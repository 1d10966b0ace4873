"""What survives a restart: finished jobs and curves stay; a job whose worker fell silent fails."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from service.http.app import create_app
from service.jobs.records import JobStatus
from service.jobs.request import JobSpec
from service.jobs.store import STALE_AFTER_S, WORKER_LOST, JobStore
from tests.service.jobs.conftest import SHORT_LOGISTIC, age_heartbeat, job_settings, wait_job


def test_a_new_app_on_the_same_database_lists_the_finished_job_and_its_curve(
    tmp_path: Path, models_dir: Path
) -> None:
    """After a restart on the same database and models folder the job and curve are there."""
    settings = job_settings(tmp_path, models_dir)
    with TestClient(create_app(settings)) as first:
        job_id = first.post("/train", json={**SHORT_LOGISTIC, "name": "kept"}).json()["id"]
        assert wait_job(first, job_id).status == "succeeded"
        before = first.get(f"/train/{job_id}/curve.json").json()

    with TestClient(create_app(settings)) as second:
        listed = second.get("/train").json()
        assert [j["id"] for j in listed["jobs"]] == [job_id]
        assert listed["jobs"][0]["status"] == "succeeded"
        assert second.get(f"/train/{job_id}/curve.json").json() == before
        assert len(before["loss_curve"]) == 150 * 6  # the fit and 5 out-of-fold fits
        version = second.get(f"/train/{job_id}").json()["model"]["version"]
        answer = second.post("/models/kept/predict", json={"pixels": [0.0] * 64})
        assert answer.json()["version"] == str(version)


def test_start_up_fails_running_jobs_whose_heartbeat_is_stale(
    tmp_path: Path, models_dir: Path
) -> None:
    """A job left running by a process that stopped beating is failed ("worker lost") at
    start-up; a job whose worker still beats (elsewhere) is left running."""
    settings = job_settings(tmp_path, models_dir)
    store = JobStore(settings.database_url)
    dead, alive = (
        store.create(JobSpec(family="logistic").new_job()),
        store.create(JobSpec(family="fnn").new_job()),
    )
    assert dead is not None
    assert alive is not None
    assert store.claim(dead.id, "a-process-that-died")
    assert store.claim(alive.id, "a-worker-elsewhere")
    age_heartbeat(store, dead.id, STALE_AFTER_S + 1)
    store.close()

    with TestClient(create_app(settings)) as client:
        failed = client.get(f"/train/{dead.id}").json()
        running = client.get(f"/train/{alive.id}").json()
    assert failed["status"] == JobStatus.FAILED
    assert failed["error"] == WORKER_LOST
    assert running["status"] == JobStatus.RUNNING


def test_only_running_jobs_silent_for_longer_than_the_limit_are_lost(tmp_path: Path) -> None:
    """The one liveness rule: a running job is lost once its heartbeat is older than the
    limit, and a heartbeat keeps it alive."""
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    job = store.create(JobSpec(family="logistic").new_job())
    assert job is not None
    assert store.claim(job.id, "elsewhere:1:token")
    age_heartbeat(store, job.id, 60)
    assert store.beat(job.id, "elsewhere:1:token")
    assert not store.beat(job.id, "someone-else")
    assert store.fail_lost_jobs(stale_after=30) == []
    assert store.fail_lost_jobs(stale_after=-1) == [job.id]
    failed = store.get(job.id)
    assert failed.status == JobStatus.FAILED
    assert failed.error == WORKER_LOST
