"""A job's cost is bounded: an estimate refused up front, and a wall-clock limit."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.http.app import create_app
from service.jobs.cost import estimate
from service.settings import Settings
from tests.service.jobs.conftest import (
    LONG_CNN,
    gone,
    job_settings,
    stop_running_worker,
    wait_job,
    wait_until,
)
from training.recipes import PRESETS

#: The spec that held the only slot for days: inside every per-field bound, yet huge.
HUGE_CNN = {
    "family": "cnn",
    "hyperparameters": {"channels": [256, 256, 256, 256], "batch_size": 4096, "iterations": 20000},
}


@pytest.mark.parametrize("factor", [1, 2])
def test_every_recipe_fits_the_default_limits_at_up_to_twice_its_iterations(factor: int) -> None:
    """The default limits admit each preset in ``training.recipes`` at 1x and 2x iterations."""
    defaults = Settings.model_fields
    for presets in PRESETS.values():
        for preset in presets.values():
            recipe = replace(preset.recipe, iterations=preset.recipe.iterations * factor)
            cost = estimate(preset.spec, recipe)
            assert cost.macs <= defaults["max_job_macs"].default, preset
            assert cost.activation_bytes <= defaults["max_job_activation_mb"].default * 2**20


def test_a_job_over_the_cost_limit_is_422_naming_the_limit(client: TestClient) -> None:
    """The huge CNN is refused before it is queued, and the answer names the limit."""
    refused = client.post("/train", json=HUGE_CNN)
    assert refused.status_code == 422
    assert "max_job_macs" in refused.json()["error"]["message"]
    assert client.get("/train").json()["total"] == 0


def test_a_job_over_the_activation_limit_is_422_naming_it(client: TestClient) -> None:
    """Even for a few steps, a step whose activations would not fit the limit is refused."""
    few_steps = {**HUGE_CNN, "hyperparameters": {**HUGE_CNN["hyperparameters"], "iterations": 1}}
    refused = client.post("/train", json=few_steps)
    assert refused.status_code == 422
    assert "max_job_activation_mb" in refused.json()["error"]["message"]


def test_a_job_over_its_time_limit_ends_failed_time_limit(tmp_path: Path, models_dir: Path) -> None:
    """A fit that runs past ``job_time_limit_s`` stops and ends ``failed: time limit``."""
    settings = job_settings(tmp_path, models_dir, job_time_limit_s=1)
    with TestClient(create_app(settings)) as client:
        job_id = client.post("/train", json=LONG_CNN).json()["id"]
        job = wait_job(client, job_id, timeout=60)
    assert job.status == "failed"
    assert job.error is not None
    assert job.error.startswith("time limit")
    assert job.iteration < 20000


def test_a_job_that_cannot_stop_is_killed_past_its_time_limit(
    tmp_path: Path, models_dir: Path
) -> None:
    """A fit hung inside a step (its process ``SIGSTOP``ped) past ``job_time_limit_s``: the
    launcher fails it ``time limit`` 10 s after the limit and kills the process."""
    settings = job_settings(tmp_path, models_dir, job_time_limit_s=5)
    with TestClient(create_app(settings)) as client:
        job_id = client.post("/train", json=LONG_CNN).json()["id"]
        with stop_running_worker(client, job_id) as pid:
            body = wait_until(client, job_id, lambda b: b["status"] != "running", timeout=40)
            assert body["status"] == "failed"
            assert body["error"].startswith("time limit: the job ran "), body["error"]
            assert "over job_time_limit_s = 5 s" in body["error"]
            assert gone(pid), f"the stopped worker {pid} is still there"
