"""The promotion gate through HTTP, on SQLite and PostgreSQL: a job's ``"promote": true``
moves ``production`` only when the new version's validation accuracy is at least
production's minus the tolerance; a manual move with ``"gate": true`` gets the same check."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.http.app import create_app
from tests.databases import BACKENDS, database_url
from tests.service.jobs.conftest import SHORT_LOGISTIC, job_settings, wait_job

PIXELS = {"pixels": [0.0] * 64}
#: One optimiser step: a version no one should serve.
WEAK_LOGISTIC = {"family": "logistic", "hyperparameters": {"iterations": 1, "acc_step": 1}}


@pytest.fixture(params=BACKENDS)
def gate_client(
    request: pytest.FixtureRequest, tmp_path: Path, tiny_models: Path
) -> Iterator[TestClient]:
    """An app on a copy of the tiny models (logistic v1: 40 steps) over each backend."""
    shutil.copytree(tiny_models, tmp_path / "models")
    with database_url(request.param, tmp_path) as url:
        settings = job_settings(tmp_path, tmp_path / "models", database_url=url)
        with TestClient(create_app(settings)) as client:
            yield client


def run(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    """Submit a promoting job, wait for it, and return its view."""
    job_id = client.post("/train", json={**body, "promote": True}).json()["id"]
    assert wait_job(client, job_id).status == "succeeded"
    view: dict[str, Any] = client.get(f"/train/{job_id}").json()
    return view


def served(client: TestClient) -> str:
    version: str = client.post("/models/logistic/predict", json=PIXELS).json()["version"]
    return version


def test_gate_refuses_a_weak_version_and_promotes_a_good_one(gate_client: TestClient) -> None:
    """A 1-step fit ends succeeded with promoted false and both figures, production stays;
    a manual gated move of it is a 409 with the figures, an ungated one moves; a 150-step
    fit is promoted, recorded as the job's move."""
    weak = run(gate_client, WEAK_LOGISTIC)
    promotion = weak["promotion"]
    assert promotion["requested"] is True
    assert promotion["promoted"] is False
    assert promotion["production_version"] == 1
    assert promotion["validation_accuracy"] < promotion["production_validation_accuracy"] - 0.005
    assert served(gate_client) == "1"
    version = weak["model"]["version"]

    body = {"version": version, "reason": "try the weak one", "gate": True}
    refused = gate_client.put("/models/logistic/aliases/production", json=body)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "gate_refused"
    assert error["gate"]["accuracy"] == pytest.approx(promotion["validation_accuracy"])
    assert error["gate"]["production_accuracy"] == pytest.approx(
        promotion["production_validation_accuracy"]
    )
    assert served(gate_client) == "1"
    body["gate"] = False
    assert gate_client.put("/models/logistic/aliases/production", json=body).status_code == 200
    assert served(gate_client) == str(version)
    assert gate_client.post("/models/logistic/aliases/production/rollback").status_code == 200

    good = run(gate_client, SHORT_LOGISTIC)
    assert good["promotion"]["promoted"] is True, good["promotion"]
    assert served(gate_client) == str(good["model"]["version"])
    last = gate_client.get("/models/logistic/history").json()["moves"][0]
    assert (last["kind"], last["actor"]) == ("promote", f"job:{good['id']}")
    manifest = gate_client.get("/models/logistic").json()["versions"][-1]["manifest"]
    assert manifest["validation"]["accuracy"] == good["promotion"]["validation_accuracy"]
    assert manifest["validation"]["from"] == "out_of_fold"
