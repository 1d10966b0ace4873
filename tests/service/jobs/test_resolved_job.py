"""The typed job: resolved once, stored as JSON, read back the same in every process, and
rows written before it (``data/specs_before_resolved_job.json``, made by the code of
commit 86eda33) upgraded by migration 0002, then served and run."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, insert

from service.http.app import create_app
from service.http.routes.job_request import JobSpec
from service.jobs.records import ResolvedJob
from service.jobs.tables import jobs_table
from tests.service.db import store_86eda33
from tests.service.jobs.conftest import job_settings, wait_job
from training.ensemble_spec import EnsembleSpec

OLDER = json.loads((Path(__file__).parent / "data/specs_before_resolved_job.json").read_text())


def _queue_older_row(url: str, row: dict[str, Any]) -> str:
    """Queue a job row exactly as the code before ``ResolvedJob`` wrote it."""
    job_id = uuid.uuid4().hex
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            insert(jobs_table).values(
                id=job_id,
                status="queued",
                family=row["family"],
                name=row["name"],
                promote=row["promote"],
                spec=row["spec"],
                created_at=time.time(),
                cancel_requested=False,
                iteration=0,
                total_iterations=row["spec"]["recipe"]["iterations"],
            )
        )
    engine.dispose()
    return job_id


def test_rows_written_before_the_typed_job_are_served_and_run(
    tmp_path: Path, models_dir: Path
) -> None:
    """Older queued rows in a store of that release are rewritten by its upgrade at start,
    shown with their recipe, architecture and hyper-parameters, and fitted and published as
    they were asked."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store_86eda33.build(url)
    fnn = _queue_older_row(url, OLDER["fnn"])
    ensemble = _queue_older_row(url, OLDER["ensemble"])
    with TestClient(create_app(job_settings(tmp_path, models_dir, database_url=url))) as client:
        body = client.get(f"/train/{fnn}").json()
        assert (body["recipe"], body["name"], body["promote"]) == ("lecture", "older", True)
        assert body["architecture"]["hidden"] == 12
        assert body["hyperparameters"]["iterations"] == 7
        assert client.get("/train").status_code == 200
        assert wait_job(client, fnn).status == "succeeded"
        assert wait_job(client, ensemble).status == "succeeded"
        body = client.get(f"/train/{fnn}").json()
        assert body["model"] == {"name": "older", "version": 1}
        # six fits (the fit and 5 out-of-fold fits) of the 7 steps it asked for, all counted
        assert body["progress"]["iteration"] == body["progress"]["total"] == 7 * 6
        body = client.get(f"/train/{ensemble}").json()
        assert body["hyperparameters"]["seed"] == 4
        assert body["progress"]["iteration"] == body["progress"]["total"] == 6 * 6
        assert body["model"]["name"] == "ensemble"


def test_a_resolved_job_reads_back_equal_from_its_stored_json() -> None:
    """What the route stores is what a worker reads: same fit, same limits, same cost."""
    spec = JobSpec.model_validate(
        {"family": "ensemble", "members": ["fnn", "cnn"], "hyperparameters": {"seed": 3}}
    )
    job = spec.resolve(time_limit_s=30.0, gate_tolerance=0.02)
    stored = json.loads(json.dumps(job.model_dump(mode="json")))
    again = ResolvedJob.model_validate(stored)
    assert again == job
    fit, recipe = again.fit_spec()
    assert isinstance(fit, EnsembleSpec)
    assert recipe is None
    assert [m.spec.family for m in fit.members] == ["fnn", "cnn"]
    assert fit.seed == 3
    assert (again.time_limit_s, again.gate_tolerance) == (30.0, 0.02)
    assert again.cost is not None
    assert again.cost.seconds > 0
    assert again.total_iterations == fit.iterations * 6  # the fit and 5 out-of-fold fits
