"""What survives a restart: finished jobs and curves stay; a job with no recent progress fails."""

from __future__ import annotations

import re
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import update

from service.http.app import create_app
from service.http.routes.job_request import JobSpec
from service.jobs.liveness import KILL_GRACE_S, fail_stalled
from service.jobs.records import JobStatus
from service.jobs.store import JobStore
from service.jobs.tables import jobs_table
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


def test_start_up_fails_running_jobs_with_no_recent_progress(
    tmp_path: Path, models_dir: Path
) -> None:
    """A job left running with no progress for longer than job_stall_s is failed at
    start-up, saying for how long; a job that progressed recently (elsewhere) keeps running."""
    settings = job_settings(tmp_path, models_dir, job_stall_s=30)
    store = JobStore.open(settings.database_url)
    dead, alive = (
        store.create(JobSpec(family="logistic").resolve()),
        store.create(JobSpec(family="fnn").resolve()),
    )
    assert dead is not None
    assert alive is not None
    assert store.claim(dead.id, "a-process-that-died")
    assert store.claim(alive.id, "a-worker-elsewhere")
    age_heartbeat(store, dead.id, 31)
    store.close()

    with TestClient(create_app(settings)) as client:
        failed = client.get(f"/train/{dead.id}").json()
        running = client.get(f"/train/{alive.id}").json()
    assert failed["status"] == JobStatus.FAILED
    quiet = re.match(r"no progress for (\d+) s \(job_stall_s = 30\)", failed["error"])
    assert quiet is not None, failed["error"]
    assert 31 <= int(quiet[1]) < 60
    assert running["status"] == JobStatus.RUNNING


def test_a_running_job_fails_for_no_progress_or_past_its_time_limit(tmp_path: Path) -> None:
    """The liveness rule: progress (not a timer) keeps a job alive, and a job still running
    past its time limit plus the grace is failed even while it progresses."""
    store = JobStore.open(f"sqlite:///{tmp_path / 'jobs.db'}")
    quiet, progressing, overdue = (
        store.create(JobSpec(family="logistic").resolve(time_limit_s=100)) for _ in range(3)
    )
    for job in (quiet, progressing, overdue):
        assert job is not None
        assert store.claim(job.id, "elsewhere:1:token")
        age_heartbeat(store, job.id, 60)
    assert store.record_progress(
        progressing.id, "elsewhere:1:token", iteration=1, elapsed=0.1, losses=[1.0], accuracy=[]
    ) == (False, None)
    assert store.record_progress(
        overdue.id, "elsewhere:1:token", iteration=1, elapsed=0.1, losses=[1.0], accuracy=[]
    ) == (False, None)
    with store.engine.begin() as conn:
        conn.execute(
            update(jobs_table)
            .where(jobs_table.c.id == overdue.id)
            .values(started_at=time.time() - 100 - KILL_GRACE_S - 1)
        )

    assert sorted(fail_stalled(store.engine, 30)) == sorted([quiet.id, overdue.id])
    assert store.get(quiet.id).error.startswith("no progress for 60 s")  # type: ignore[union-attr]
    assert store.get(overdue.id).error.startswith("time limit: the job ran 111 s")  # type: ignore[union-attr]
    assert store.get(progressing.id).status == JobStatus.RUNNING
    assert fail_stalled(store.engine, 30) == []  # a failed job is not failed twice
