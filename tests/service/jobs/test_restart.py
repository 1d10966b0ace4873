"""What survives a restart: finished jobs and curves stay; a job whose process died fails."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from service.app import create_app
from service.jobs.models import JobSpec, JobStatus
from service.jobs.store import WORKER_LOST, JobStore
from tests.service.jobs.conftest import SHORT_LOGISTIC, job_settings, wait_job


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
        assert len(before["loss_curve"]) == 150
        version = second.get(f"/train/{job_id}").json()["model"]["version"]
        answer = second.post("/models/kept/predict", json={"pixels": [0.0] * 64})
        assert answer.json()["version"] == str(version)


def test_start_up_fails_running_jobs_whose_owner_process_is_gone(
    tmp_path: Path, models_dir: Path
) -> None:
    """A job left running by a process that exited is failed ("worker lost") at start-up."""
    settings = job_settings(tmp_path, models_dir)
    store = JobStore(settings.database_url)
    job = store.create(JobSpec(family="logistic"))
    assert job is not None
    exited = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    owner = f"{socket.gethostname()}:{exited.stdout.strip()}:deadbeef"
    assert store.claim(job.id, owner)
    store.close()

    with TestClient(create_app(settings)) as client:
        body = client.get(f"/train/{job.id}").json()
    assert body["status"] == JobStatus.FAILED
    assert body["error"] == WORKER_LOST


def test_silent_running_jobs_of_other_hosts_are_failed_as_stale(tmp_path: Path) -> None:
    """A running job whose owner (on another machine) stopped writing is declared lost."""
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    job = store.create(JobSpec(family="logistic"))
    assert job is not None
    assert store.claim(job.id, "elsewhere:1:token")
    assert store.mark_orphans("me", stale_after=3600) == []
    assert store.mark_orphans("me", stale_after=-1) == [job.id]
    failed = store.get(job.id)
    assert failed.status == JobStatus.FAILED
    assert failed.error is not None
    assert failed.error.startswith("worker lost")
