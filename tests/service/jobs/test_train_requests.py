"""What POST /train accepts, and who may submit and cancel (no job ever runs here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.http.app import create_app
from tests.service.jobs.conftest import job_settings

ADMIN, READER = "admin-secret", "read-secret"


def _job(**hyperparameters: Any) -> dict[str, Any]:
    return {"family": "fnn", "hyperparameters": hyperparameters}


@pytest.mark.parametrize(
    ("body", "field", "allowed"),
    [
        pytest.param(_job(iterations=0), "iterations", "[1, 20000]", id="iterations-0"),
        pytest.param(_job(iterations=20001), "iterations", "[1, 20000]", id="iterations-20001"),
        pytest.param(_job(lr=0), "lr", "(0, 10]", id="lr-0"),
        pytest.param(_job(lr=11), "lr", "(0, 10]", id="lr-11"),
        pytest.param(_job(momentum=1.0), "momentum", "[0, 0.999]", id="momentum-1"),
        pytest.param(_job(hidden=4096), "hidden", "[1, 2048]", id="hidden-4096"),
        pytest.param(_job(depth=5), "depth", "[1, 4]", id="depth-5"),
        pytest.param(_job(batch_size=0), "batch_size", "[1, 4096]", id="batch-0"),
        pytest.param(_job(label_smoothing=0.9), "label_smoothing", "[0, 0.5]", id="smooth-0.9"),
        pytest.param(_job(dropout=0.95), "dropout", "[0, 0.9]", id="dropout-0.95"),
        pytest.param(_job(seed=-1), "seed", "[0, 2147483647]", id="seed-negative"),
        pytest.param(_job(acc_step=0), "acc_step", "[1, 20000]", id="acc-step-0"),
        pytest.param(_job(optimizer="lbfgs"), "optimizer", "sgd", id="optimizer-unknown"),
        pytest.param(_job(activation="gelu"), "activation", "relu", id="activation-unknown"),
        pytest.param(_job(weight_decay=2), "weight_decay", "[0, 1]", id="weight-decay-2"),
        pytest.param(_job(steps=10), "steps", "Extra inputs", id="unknown-field"),
        pytest.param(_job(iterations=True), "iterations", "[1, 20000], got true", id="bool-int"),
        pytest.param(_job(lr=True), "lr", "(0, 10], got true", id="bool-float"),
        pytest.param(
            {"family": "cnn", "hyperparameters": {"channels": [True, 8]}},
            "channels",
            "[1, 256], got [true, 8]",
            id="bool-channel",
        ),
        pytest.param(
            {"family": "cnn", "hyperparameters": {"channels": [8] * 5}},
            "channels",
            "1 to 4",
            id="channels-5",
        ),
        pytest.param(
            {"family": "cnn", "hyperparameters": {"hidden": 32}},
            "hyperparameters",
            "fnn",
            id="hidden-for-cnn",
        ),
        pytest.param({"family": "svm"}, "family", "logistic", id="family-unknown"),
        pytest.param({"family": "fnn", "name": "Bad Name"}, "name", "a-z0-9", id="name-pattern"),
        pytest.param({"family": "fnn", "name": "x" * 65}, "name", "a-z0-9", id="name-65"),
        pytest.param({"family": "fnn", "recipe": "fast"}, "recipe", "lecture", id="recipe"),
        pytest.param({"family": "fnn", "promote": "yes"}, "promote", "boolean", id="promote-yes"),
        pytest.param(_job(augment_shift=1), "augment_shift", "boolean", id="augment-shift-1"),
        pytest.param(
            {"family": "fnn", "members": ["cnn"]}, "members", "ensemble", id="members-for-fnn"
        ),
        pytest.param(
            {"family": "ensemble", "hyperparameters": {"lr": 0.1}},
            "hyperparameters",
            "only seed and iterations",
            id="lr-for-ensemble",
        ),
        pytest.param(
            {"family": "ensemble", "members": ["svm"]}, "members", "logistic", id="member-unknown"
        ),
        pytest.param({"family": "ensemble", "members": []}, "members", "1", id="members-empty"),
    ],
)
def test_submit_rejects_a_bad_field_naming_it_and_its_range(
    client: TestClient, body: dict[str, Any], field: str, allowed: str
) -> None:
    """Each out-of-range or unknown field is a 422 that names the field and what is allowed."""
    response = client.post("/train", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert field in error["message"]
    assert allowed in error["message"]
    assert client.get("/train").json()["total"] == 0


@pytest.fixture
def keyed_client(tmp_path: Path, models_dir: Path) -> Iterator[TestClient]:
    """A client on an app with an admin key and a read key set."""
    settings = job_settings(tmp_path, models_dir, admin_api_key=ADMIN, read_api_key=READER)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, 401, id="no-key"),
        pytest.param({"Authorization": "Bearer wrong"}, 403, id="wrong-bearer"),
        pytest.param({"X-API-Key": "wrong"}, 403, id="wrong-header"),
        pytest.param({"Authorization": f"Bearer {READER}"}, 403, id="read-key"),
    ],
)
def test_submit_and_cancel_need_the_admin_key(
    keyed_client: TestClient, headers: dict[str, str], status: int
) -> None:
    """Without the admin key POST /train and DELETE /train/{id} answer 401 or 403."""
    body = {"family": "logistic", "hyperparameters": {"iterations": 20000}}
    submitted = keyed_client.post("/train", json=body, headers=headers)
    assert submitted.status_code == status
    assert submitted.json()["error"]["code"] == ("unauthorized" if status == 401 else "forbidden")
    if status == 401:
        assert submitted.headers["www-authenticate"] == "Bearer"
    assert keyed_client.delete("/train/any", headers=headers).status_code == status


def test_admin_key_passes_and_read_key_reads(keyed_client: TestClient) -> None:
    """The admin key (bearer or X-API-Key) gets past the guard of submit and cancel (to
    validation and lookup); the read key or the admin key reads, no key does not."""
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert keyed_client.post("/train", json={"family": "svm"}, headers=admin).status_code == 422
    assert keyed_client.delete("/train/nope", headers={"X-API-Key": ADMIN}).status_code == 404
    assert keyed_client.get("/train").status_code == 401
    assert keyed_client.get("/train/nope", headers={"X-API-Key": READER}).status_code == 404
    assert keyed_client.get("/train", headers=admin).status_code == 200


def test_reads_are_open_without_a_read_key(client: TestClient) -> None:
    """With no keys set, listing jobs needs no header."""
    assert client.get("/train").status_code == 200


@pytest.mark.parametrize("offset", ["9223372036854775808", "99999999999999999999999"])
def test_list_offset_beyond_bigint_is_422_not_500(client: TestClient, offset: str) -> None:
    """An offset past SQL's 64-bit range gets a 422 naming the field and its bound."""
    response = client.get("/train", params={"offset": offset})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["message"].startswith("query.offset: ")
    assert "9223372036854775807" in error["message"]


def test_openapi_documents_every_status_cancel_answers(client: TestClient) -> None:
    """DELETE /train/{id} documents 200, 202 (running), 404 (unknown) and 409 (ended)."""
    spec = client.get("/openapi.json").json()
    responses = spec["paths"]["/train/{job_id}"]["delete"]["responses"]
    assert {"200", "202", "404", "409"} <= set(responses)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param(b'{"family": "\xff\xfe"}', "not UTF-8", id="invalid-utf8"),
        pytest.param(b"[" * 5000 + b"]" * 5000, "nested too deeply", id="deep-nesting"),
    ],
)
def test_submit_with_an_undecodable_body_is_422_saying_why(
    client: TestClient, raw: bytes, reason: str
) -> None:
    """A body FastAPI cannot decode gets a 422 invalid_input saying why, not a bare 400."""
    response = client.post("/train", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert reason in error["message"]
    assert "application/json" in error["expected"]


def test_openapi_states_every_bound_of_the_request(client: TestClient) -> None:
    """The schema itself carries each numeric range and list length, so a client or a fuzzer
    can read them (not only the descriptions)."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    fields = schemas["Hyperparameters"]["properties"]
    numeric = [
        name
        for name, spec in fields.items()
        if any(branch.get("type") in ("integer", "number") for branch in spec.get("anyOf", []))
    ]
    assert len(numeric) == 12
    for name in numeric:
        assert "maximum" in fields[name], name
        assert {"minimum", "exclusiveMinimum"} & fields[name].keys(), name
    assert (fields["iterations"]["minimum"], fields["iterations"]["maximum"]) == (1, 20000)
    assert fields["lr"]["exclusiveMinimum"] == 0
    channels = fields["channels"]
    assert (channels["minItems"], channels["maxItems"]) == (1, 4)
    assert channels["items"] == {"minimum": 1, "maximum": 256}
