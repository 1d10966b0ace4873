"""Training jobs over HTTP on one app whose worker process is reused across the tests."""

from __future__ import annotations

import os
import signal
import time

import pytest
from fastapi.testclient import TestClient

from tests.service.jobs.conftest import (
    LONG_CNN,
    SHORT_LOGISTIC,
    TEST_STALL_S,
    cancel_and_wait,
    gone,
    running_with_steps,
    stop_running_worker,
    wait_job,
    wait_until,
)
from training.contract import read_manifest

PIXELS = {"pixels": [0.0] * 64}


def test_job_succeeds_with_a_falling_curve_and_its_version_answers(
    jobs_client: TestClient,
) -> None:
    """A short job ends succeeded, its loss falls, and the new version answers predict."""
    response = jobs_client.post("/train", json={**SHORT_LOGISTIC, "name": "fresh"})
    assert response.status_code == 202
    job_id = response.json()["id"]
    assert response.headers["location"] == f"/train/{job_id}"
    assert response.json()["status"] in ("queued", "running")

    assert wait_job(jobs_client, job_id).status == "succeeded"
    body = jobs_client.get(f"/train/{job_id}").json()
    assert body["model"] == {"name": "fresh", "version": 1}
    # 150 steps on every training row, then 5 out-of-fold fits of 150 steps each
    assert body["progress"]["iteration"] == body["progress"]["total"] == 150 * 6
    assert body["loss_points"] == 150 * 6
    values = body["loss_curve"][:150]  # the fit on every training row
    assert all(isinstance(v, float) for v in values)
    assert sum(values[-10:]) / 10 < sum(values[:10]) / 10
    assert body["accuracy"]["iterations"][-1] == 150
    assert len(body["accuracy"]["train"]) == len(body["accuracy"]["test"])
    assert body["metrics"]["test_accuracy"] > 0.8
    full = jobs_client.get(f"/train/{job_id}/curve.json").json()
    assert len(full["loss_curve"]) == 150 * 6
    answer = jobs_client.post("/models/fresh/predict", json=PIXELS)
    assert answer.status_code == 200
    assert answer.json()["version"] == "1"


def test_ensemble_job_publishes_one_calibrated_module_listing_its_members(
    jobs_client: TestClient,
) -> None:
    """An ensemble job fits its members one after the other (one step count over both) and
    publishes one version whose manifest lists them and records its temperature; it answers
    predict like any model, with probabilities summing to 1."""
    body = {
        "family": "ensemble",
        "members": ["logistic", "fnn"],
        "hyperparameters": {"iterations": 60, "seed": 3},
    }
    job_id = jobs_client.post("/train", json=body).json()["id"]
    job = wait_job(jobs_client, job_id)
    assert job.status == "succeeded", job.error
    view = jobs_client.get(f"/train/{job_id}").json()
    assert view["progress"]["iteration"] == view["progress"]["total"] == 120 * 6  # + 5 folds
    settings = jobs_client.app.state.settings  # type: ignore[attr-defined]
    manifest = read_manifest(settings.versions_dir / "ensemble" / str(job.model_version))
    assert [(m["family"], m["seed"]) for m in manifest.members or []] == [
        ("logistic", 6),
        ("fnn", 7),
    ]
    assert manifest.calibration is not None
    assert manifest.validation is not None
    answer = jobs_client.post("/models/ensemble/predict", json=PIXELS)
    assert answer.status_code == 200, answer.text
    (prediction,) = answer.json()["predictions"]
    assert sum(prediction["probabilities"]) == pytest.approx(1.0, abs=1e-4)


def test_promote_makes_the_new_version_the_default(jobs_client: TestClient) -> None:
    """Without promote production stays and no pin is written; the new version goes to the
    runtime folder, never the shipped one; with promote (and a better fit than the 40-step
    production) production moves to the new version, recorded as the job's promotion."""
    settings = jobs_client.app.state.settings  # type: ignore[attr-defined]
    shipped_before = sorted(p.name for p in (settings.models_dir / "logistic").iterdir())
    kept = wait_job(jobs_client, jobs_client.post("/train", json=SHORT_LOGISTIC).json()["id"])
    assert kept.model_version is not None
    assert kept.model_version > 1
    assert (settings.versions_dir / "logistic" / str(kept.model_version)).is_dir()
    assert sorted(p.name for p in (settings.models_dir / "logistic").iterdir()) == shipped_before
    assert not (settings.versions_dir / "logistic" / "DEFAULT").exists()
    before = jobs_client.post("/models/logistic/predict", json=PIXELS).json()["version"]
    assert before == "1"

    promoted_id = jobs_client.post("/train", json={**SHORT_LOGISTIC, "promote": True}).json()["id"]
    promoted = wait_job(jobs_client, promoted_id)
    assert promoted.status == "succeeded"
    after = jobs_client.post("/models/logistic/predict", json=PIXELS).json()["version"]
    assert after == str(promoted.model_version)
    assert jobs_client.get(f"/train/{promoted_id}").json()["promotion"]["promoted"] is True
    assert not (settings.versions_dir / "logistic" / "DEFAULT").exists()
    assert not (settings.models_dir / "logistic" / "DEFAULT").exists()


def test_cancel_stops_a_running_fit_within_a_second(jobs_client: TestClient) -> None:
    """DELETE on a running job answers 202 and the job ends cancelled in under a second."""
    job_id = jobs_client.post("/train", json=LONG_CNN).json()["id"]
    wait_until(jobs_client, job_id, running_with_steps)

    started = time.monotonic()
    response = jobs_client.delete(f"/train/{job_id}")
    assert response.status_code == 202
    assert response.json()["cancel_requested"] is True
    job = wait_job(jobs_client, job_id, timeout=5)
    assert job.status == "cancelled"
    assert time.monotonic() - started < 1.5  # stop latency ~0.2 s plus polling
    assert jobs_client.delete(f"/train/{job_id}").status_code == 409


def test_queue_full_answers_429_with_retry_after(jobs_client: TestClient) -> None:
    """With one job running and one queued (the limits), another submit is refused 429."""
    running = jobs_client.post("/train", json=LONG_CNN).json()["id"]
    wait_until(jobs_client, running, running_with_steps)
    queued = jobs_client.post("/train", json=LONG_CNN)
    assert queued.status_code == 202
    try:
        refused = jobs_client.post("/train", json=LONG_CNN)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "queue_full"
        assert int(refused.headers["retry-after"]) > 0
        cancelled = jobs_client.delete(f"/train/{queued.json()['id']}")
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
    finally:
        cancel_and_wait(jobs_client, queued.json()["id"])
        cancel_and_wait(jobs_client, running)


def test_list_is_newest_first_paginated_and_filtered(jobs_client: TestClient) -> None:
    """GET /train pages newest first, links the next page and filters by status."""
    ids = [jobs_client.post("/train", json=SHORT_LOGISTIC).json()["id"]]
    wait_job(jobs_client, ids[0])
    ids.append(jobs_client.post("/train", json=SHORT_LOGISTIC).json()["id"])
    wait_job(jobs_client, ids[1])

    page = jobs_client.get("/train", params={"limit": 1}).json()
    assert [j["id"] for j in page["jobs"]] == [ids[1]]
    assert page["total"] >= 2
    assert page["jobs"][0]["loss_points"] == 150 * 6  # the fit and 5 out-of-fold fits
    assert len(page["jobs"][0]["loss_curve"]) == 150 * 6
    second = jobs_client.get(page["next"]).json()
    assert [j["id"] for j in second["jobs"]] == [ids[0]]
    succeeded = jobs_client.get("/train", params={"status": "succeeded", "limit": 100}).json()
    assert {j["status"] for j in succeeded["jobs"]} == {"succeeded"}
    assert jobs_client.get("/train", params={"status": "bogus"}).status_code == 422


def test_curve_plots_render_as_png_and_svg(jobs_client: TestClient) -> None:
    """curve.png and curve.svg draw a finished job's curves."""
    job_id = jobs_client.post("/train", json=SHORT_LOGISTIC).json()["id"]
    wait_job(jobs_client, job_id)
    png = jobs_client.get(f"/train/{job_id}/curve.png")
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    svg = jobs_client.get(f"/train/{job_id}/curve.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content


def test_unknown_job_is_404(jobs_client: TestClient) -> None:
    """Every job route answers 404 job_not_found for an unknown id."""
    for path in ("/train/nope", "/train/nope/curve.json", "/train/nope/events"):
        response = jobs_client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "job_not_found"
    assert jobs_client.delete("/train/nope").status_code == 404


def test_killed_worker_fails_its_job_and_the_service_still_predicts(
    jobs_client: TestClient,
) -> None:
    """SIGKILL of the worker mid-fit ends the job failed with a reason; predict still works,
    and the next job runs on a fresh worker."""
    job_id = jobs_client.post("/train", json=LONG_CNN).json()["id"]
    wait_until(jobs_client, job_id, running_with_steps)
    pid = jobs_client.portal.call(jobs_client.app.state.jobs.get, job_id).worker_pid  # type: ignore[attr-defined]
    assert pid is not None
    assert pid != os.getpid()

    os.kill(pid, signal.SIGKILL)
    # The local launcher sees its worker die at once; a Celery worker's job stops progressing.
    job = wait_job(jobs_client, job_id, timeout=TEST_STALL_S + 10)
    assert job.status == "failed"
    assert job.error is not None
    assert "worker lost" in job.error or "no progress for" in job.error
    assert jobs_client.post("/predict", json=PIXELS).status_code == 200

    after = jobs_client.post("/train", json=SHORT_LOGISTIC).json()["id"]
    assert wait_job(jobs_client, after).status == "succeeded"


def test_stopped_worker_fails_its_job_for_no_progress_and_is_killed(
    jobs_client: TestClient,
) -> None:
    """SIGSTOP of the process running a fit (a hang inside a step): the job ends failed with
    "no progress for N s" within job_stall_s plus a grace, the process is killed (stopped
    processes included), the API answers meanwhile, and the next job runs."""
    job_id = jobs_client.post("/train", json=LONG_CNN).json()["id"]
    with stop_running_worker(jobs_client, job_id) as pid:
        stopped = time.monotonic()
        body = wait_until(
            jobs_client, job_id, lambda b: b["status"] != "running", timeout=TEST_STALL_S + 15
        )
        ended = time.monotonic() - stopped
        assert body["status"] == "failed"
        assert body["error"].startswith("no progress for "), body["error"]
        assert TEST_STALL_S - 1 < ended < TEST_STALL_S + 10
        assert jobs_client.get("/health/live").status_code == 200
        assert gone(pid), f"the stopped worker {pid} is still there"

    after = jobs_client.post("/train", json=SHORT_LOGISTIC).json()["id"]
    assert wait_job(jobs_client, after).status == "succeeded"
