"""Every route but ``/train`` fuzzed from the service's own OpenAPI schema with schemathesis,
against a real ``python -m service`` holding the admin key: whatever the request, valid or
not, the answer is never a 5xx, no answer shows a Python repr, and the service logs no
traceback.

``/train`` has its own, stricter fuzz test (tests/service/jobs/test_train_fuzz.py; here jobs
would train). Repository unload is left out: it takes a model out of this process on purpose,
after which that model's routes answer 503 ``model_unavailable`` as documented.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error

from tests.service.live import LiveService, running_copy

ADMIN = "fuzz-admin-key"
LEFT_OUT = r"^/train|/unload$"
#: What must never reach a client: a Python object's repr, a class, a traceback.
PYTHON_REPR = re.compile(r"object at 0x[0-9a-fA-F]+|<_io\.|<class '|Traceback \(most recent")


@schemathesis.check
def no_python_repr(ctx: Any, response: Any, case: Case) -> bool | None:
    """Every answer, error bodies above all, says what was wrong in the client's terms."""
    found = PYTHON_REPR.search(response.text)
    if found:
        raise AssertionError(f"a Python repr in the answer: {response.text[:300]}")
    return None


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, tiny_models: Path) -> Iterator[LiveService]:
    with running_copy(
        tiny_models, tmp_path_factory.mktemp("fuzz-routes"), {"DIGITS_ADMIN_API_KEY": ADMIN}
    ) as service:
        yield service


def test_no_route_answers_a_server_error(live: LiveService) -> None:
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    operations = [op.ok() for op in schema.exclude(path_regex=LEFT_OUT).get_all_operations()]
    labels = {op.label for op in operations}
    # The protocols' inference, the rollout and the console routes are all in the schema.
    assert {
        "POST /predict",
        "POST /models/{name}/explain",
        "POST /v2/models/{name}/infer",
        "PUT /models/{name}/traffic",
    } <= labels
    assert len(operations) >= 25
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def never_a_server_error(case: Case) -> None:
            case.call_and_validate(
                base_url=live.url,
                headers={"Authorization": f"Bearer {ADMIN}"},
                checks=[not_a_server_error, no_python_repr],
            )

        never_a_server_error()
    assert "Traceback" not in live.output()
    assert httpx.get(f"{live.url}/health/ready", timeout=5).status_code == 200
