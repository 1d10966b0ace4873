"""The ``/train`` routes fuzzed from their own OpenAPI schema with schemathesis, against a
real ``python -m service``: every generated request, valid or not, gets an answer the schema
documents (status code, content type, headers, body), and never a 5xx.

The schema must state every bound (``minimum``, ``maxItems``, ...) for this to pass: a body
the schema admits but the route refuses fails the ``positive_data_acceptance`` check.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.schemas import APIOperation

from tests.service.live import LiveService, running_service

ADMIN = "fuzz-admin-key"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, tiny_models: Path) -> Iterator[LiveService]:
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(tiny_models, root / "models")
    # One queued job at most, each stopped after 2 s: fuzzing must not train for real. The
    # cost limits are lifted: a cost over them is a 422 no schema can state (tested in
    # test_limits.py), and here every body the schema admits must be accepted.
    limits = {
        "DIGITS_MAX_JOB_SECONDS_ESTIMATE": str(10**18),
        "DIGITS_MAX_JOB_ACTIVATION_MB": str(10**6),
        "DIGITS_ADMIN_API_KEY": ADMIN,
        "DIGITS_MAX_QUEUED_JOBS": "1",
        "DIGITS_MAX_RUNNING_JOBS": "1",
        "DIGITS_JOB_TIME_LIMIT_S": "2",
    }
    with running_service(root / "models", root, limits) as service:
        yield service


def train_operations(live: LiveService) -> list[APIOperation]:
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    return [result.ok() for result in schema.include(path_regex="^/train").get_all_operations()]


def test_train_routes_answer_as_their_schema_says(live: LiveService) -> None:
    """Every generated request to a /train route gets an answer its schema documents; after
    all of them the same process is still up, ready, and serves a prediction."""
    operations = train_operations(live)
    assert {op.label for op in operations} >= {"POST /train", "GET /train", "GET /train/{job_id}"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def answers_as_documented(case: Case) -> None:
            case.call_and_validate(base_url=live.url, headers={"Authorization": f"Bearer {ADMIN}"})

        answers_as_documented()
    assert live.process.poll() is None, live.output()[-2000:]
    assert httpx.get(f"{live.url}/health/ready", timeout=5).json()["status"] == "ready"
    answer = httpx.post(f"{live.url}/models/fnn/predict", json={"pixels": [0] * 64}, timeout=5)
    assert answer.status_code == 200, answer.text
