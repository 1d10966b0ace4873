"""A job's cost is bounded: an estimate refused up front, and a wall-clock limit."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.http.app import create_app
from service.http.routes.job_request import JobSpec
from service.settings import Settings
from tests.service.jobs.conftest import (
    LONG_CNN,
    gone,
    job_settings,
    stop_running_worker,
    wait_job,
    wait_until,
)
from training.fit_cost import estimate, job_estimate
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
            cost = job_estimate(preset.spec, recipe)
            assert cost.seconds <= defaults["max_job_seconds_estimate"].default, preset
            assert cost.activation_bytes <= defaults["max_job_activation_mb"].default * 2**20
    ensemble = JobSpec(family="ensemble", hyperparameters={"iterations": 2000 * factor})
    cost = ensemble.resolve().cost
    assert cost is not None
    assert cost.seconds <= defaults["max_job_seconds_estimate"].default


def test_a_job_costs_its_six_fits() -> None:
    """A job fits its model on every row and once per out-of-fold split: six fits' time."""
    preset = PRESETS["default"]["cnn"]
    cost = JobSpec(family="cnn").resolve().cost
    assert cost is not None
    assert cost.seconds == pytest.approx(6 * estimate(preset.spec, preset.recipe).seconds)


def test_a_job_over_the_cost_limit_is_422_naming_the_limit(client: TestClient) -> None:
    """The huge CNN is refused before it is queued, and the answer names the limit."""
    refused = client.post("/train", json=HUGE_CNN)
    assert refused.status_code == 422
    assert "max_job_seconds_estimate" in refused.json()["error"]["message"]
    assert client.get("/train").json()["total"] == 0


#: Issue 21's spec: within every field's bound, accepted with an ETA of 7 hours, because the
#: estimate ignored the evaluation over every row after each (``acc_step`` 1) iteration.
EVALUATING_CNN = {
    "family": "cnn",
    "hyperparameters": {
        "channels": [256] * 4,
        "batch_size": 1,
        "acc_step": 1,
        "iterations": 5800,
    },
}


def seconds(body: dict[str, Any]) -> float:
    """The estimated fit seconds of a ``POST /train`` body, resolved as the route does."""
    cost = JobSpec.model_validate(body).resolve().cost
    assert cost is not None
    return cost.seconds


def test_evaluating_every_step_is_refused_naming_the_estimate_and_the_limit(
    client: TestClient,
) -> None:
    """The 422 says how long the estimate is and what the limit is; nothing is queued."""
    refused = client.post("/train", json=EVALUATING_CNN)
    assert refused.status_code == 422
    message = refused.json()["error"]["message"]
    assert f"{seconds(EVALUATING_CNN):,.0f} s" in message
    assert "max_job_seconds_estimate = 1,800 s" in message
    assert client.get("/train").json()["total"] == 0


def test_an_ordinary_job_is_accepted(client: TestClient) -> None:
    """The default CNN recipe with a few changes is queued (202), not refused for its cost."""
    body = {"family": "cnn", "hyperparameters": {"channels": [32, 64], "iterations": 3000}}
    accepted = client.post("/train", json=body)
    assert accepted.status_code == 202, accepted.text
    client.delete(f"/train/{accepted.json()['id']}")


@pytest.mark.parametrize("family", ["logistic", "fnn", "cnn"])
def test_the_estimate_grows_as_acc_step_shrinks(family: str) -> None:
    """Evaluating more often (every row, each time) costs more, down to every step."""
    steps = [1000, 100, 10, 1]
    estimates = [
        seconds({"family": family, "hyperparameters": {"acc_step": a, "batch_size": 8}})
        for a in steps
    ]
    assert all(a < b for a, b in itertools.pairwise(estimates)), estimates


@pytest.mark.parametrize("batch_size", [1, 64, 4096])
def test_the_estimate_grows_with_channels(batch_size: int) -> None:
    """Wider and deeper convolutions cost more at any batch size."""
    widths = [[8], [32], [32, 64], [256] * 4]
    estimates = [
        seconds({"family": "cnn", "hyperparameters": {"channels": c, "batch_size": batch_size}})
        for c in widths
    ]
    assert all(a < b for a, b in itertools.pairwise(estimates)), estimates


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


def _module(path: Path) -> Any:
    """``path`` imported as a module of its own (scripts outside the package tree)."""
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(f"_limits_{path.stem}", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(path.parent))


_ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("script", "names"),
    [
        ("deploy/smoke_stack.py", ("SHORT_JOB", "LONG_JOB")),
        ("bench/sse_followers.py", ("LONG_CNN",)),
        ("tests/integration/test_scale_out.py", ("LONG_JOB",)),
    ],
)
def test_the_jobs_our_own_scripts_submit_fit_the_default_limit(
    script: str, names: tuple[str, ...]
) -> None:
    """The smoke stack, the benchmarks and the scale-out test submit jobs the default
    ``max_job_seconds_estimate`` accepts (a job estimated over it is refused with a 422,
    which failed the deployment smoke once)."""
    limit = Settings.model_fields["max_job_seconds_estimate"].default
    module = _module(_ROOT / script)
    for name in names:
        cost = JobSpec.model_validate(getattr(module, name)).resolve().cost
        assert cost.seconds < limit, f"{script}:{name} is estimated at {cost.seconds:.0f} s"
