"""Rollout over HTTP, on SQLite and on PostgreSQL: aliases and their moves, history that
survives a restart, rollback, the canary split, per-version metrics, shadow scoring, and a
clear 4xx for every bad call.

The model ``m`` has versions 1, 2 and 3 whose every answer is their own number (a
``Linear(64, 10)`` with one bias set), so the label says which version answered.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import torch
from asgi_lifespan import LifespanManager
from fastapi.testclient import TestClient
from PIL import Image

from service.http.app import create_app
from service.inference.runtime_torchscript import TorchScriptRuntime
from service.settings import Settings
from tests.conftest import SHIPPED_MODELS, make_settings
from tests.databases import BACKENDS, database_url
from tests.service.conftest import write_artifact
from tests.service.test_registry import lit
from training.contract import read_manifest

ADMIN_KEY = "rollout-admin-key-0123"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
PIXELS = {"pixels": [0] * 64}


@pytest.fixture(params=BACKENDS)
def rollout_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings on a models folder holding ``m`` 1..3, over each database backend."""
    for version in (1, 2, 3):
        write_artifact(tmp_path / "models", "m", version, lit(version))
    with database_url(request.param, tmp_path) as url:
        yield make_settings(
            tmp_path / "models", database_url=url, admin_api_key=ADMIN_KEY, default_model="m"
        )


@pytest.fixture
def client(rollout_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(rollout_settings)) as test_client:
        yield test_client


def answer(client: TestClient, query: str = "", **headers: str) -> dict[str, Any]:
    response = client.post(f"/models/m/predict{query}", json=PIXELS, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["predictions"][0]["label"] == int(body["version"])  # the version answered
    return body


def move(client: TestClient, alias: str, version: int, **extra: Any) -> dict[str, Any]:
    body = {"version": version, "reason": f"test moves {alias}", **extra}
    response = client.put(f"/models/m/aliases/{alias}", json=body, headers=ADMIN)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_first_version_is_production_and_newer_ones_wait_for_a_move(client: TestClient) -> None:
    """Versions 2 and 3 exist, yet 1 (the first) answers, as ``production``, until moved."""
    info = client.get("/models/m").json()
    assert info["aliases"] == {"production": 1}
    assert info["default_version"] == 1
    assert [v["aliases"] for v in info["versions"]] == [["production"], [], []]
    body = answer(client)
    assert (body["version"], body["alias"]) == ("1", "production")
    assert client.post("/predict", json=PIXELS).json()["version"] == "1"
    assert client.get("/models").json()["models"][0]["aliases"] == {"production": 1}


def test_moves_are_served_recorded_with_the_key_name_and_idempotent(client: TestClient) -> None:
    """A move is served at once, ``?alias=`` and ``?version=`` pick versions, a repeated move
    changes and records nothing, and the history names the key by its name, never by the key
    or a hash of it."""
    assert move(client, "staging", 2) == {
        "model": "m", "alias": "staging", "version": 2, "previous": None, "moved": True,
        "gate": None,
    }  # fmt: skip
    assert answer(client, "?alias=staging")["version"] == "2"
    assert answer(client, "?version=3")["alias"] is None
    assert move(client, "production", 3)["previous"] == 1
    assert answer(client)["version"] == "3"
    assert move(client, "production", 3)["moved"] is False
    moves = client.get("/models/m/history").json()["moves"]
    assert [(m["alias"], m["kind"], m["from_version"], m["to_version"]) for m in moves] == [
        ("production", "move", 1, 3),
        ("staging", "move", None, 2),
        ("production", "initial", None, 1),
    ]
    assert moves[0]["actor"] == "admin"  # the key's name (DIGITS_ADMIN_API_KEY_NAME)
    assert moves[0]["reason"] == "test moves production"
    history = client.get("/models/m/history").text
    assert ADMIN_KEY not in history
    assert hashlib.sha256(ADMIN_KEY.encode()).hexdigest()[:8] not in history
    only = client.get("/models/m/history", params={"alias": "staging"}).json()["moves"]
    assert [m["to_version"] for m in only] == [2]


def test_aliases_and_history_survive_a_restart(rollout_settings: Settings) -> None:
    """A new app on the same database serves the moved production and keeps every move."""
    with TestClient(create_app(rollout_settings)) as first:
        move(first, "production", 2)
    with TestClient(create_app(rollout_settings)) as second:
        assert answer(second)["version"] == "2"
        history = second.get("/models/m/history").json()["moves"]
        assert [m["to_version"] for m in history] == [2, 1]


def test_rollback_undoes_moves_in_order_then_says_there_is_nothing(client: TestClient) -> None:
    """1 -> 2 -> 3 rolls back to 2, then 1; a third rollback is a 409 naming the fix."""
    move(client, "production", 2)
    move(client, "production", 3)
    for expected in (2, 1):
        rolled = client.post("/models/m/aliases/production/rollback", headers=ADMIN)
        assert rolled.status_code == 200, rolled.text
        assert rolled.json()["version"] == expected
        assert answer(client)["version"] == str(expected)
    refused = client.post("/models/m/aliases/production/rollback", headers=ADMIN)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "nothing_to_roll_back"
    kinds = [m["kind"] for m in client.get("/models/m/history").json()["moves"]]
    assert kinds == ["rollback", "rollback", "move", "move", "initial"]


def test_canary_split_is_within_3_points_and_sticky(client: TestClient) -> None:
    """90/10 over 2,000 unpinned requests lands within +-3 points of 10% on staging; a
    request id always lands on the same side; ``?version=`` bypasses the split."""
    move(client, "staging", 2)
    put = client.put("/models/m/traffic", json={"production": 90, "staging": 10}, headers=ADMIN)
    assert put.status_code == 200, put.text
    counts = Counter(answer(client)["version"] for _ in range(2000))
    assert set(counts) == {"1", "2"}
    assert abs(counts["2"] / 2000 - 0.10) <= 0.03, counts
    sides = {answer(client, **{"X-Request-Id": f"user-{i}"})["version"] for i in range(40)}
    assert sides == {"1", "2"}  # ids spread over both sides ...
    for i in range(10):  # ... and each one sticks to its side
        seen = {answer(client, **{"X-Request-Id": f"user-{i}"})["version"] for _ in range(5)}
        assert len(seen) == 1
    assert answer(client, "?version=3")["version"] == "3"
    assert client.get("/models/m").json()["traffic"]["weights"] == {"production": 90, "staging": 10}
    metrics = client.get("/metrics").text
    staged = _sample(
        metrics, "digits_version_inference_seconds_count", alias="staging", version="2"
    )
    assert staged >= counts["2"]
    assert _sample(metrics, "digits_predicted_class_total", label="2", version="2") == staged


def test_the_image_route_is_routed_and_answered_as_predict_is(client: TestClient) -> None:
    """``/models/{name}/predict/image`` names the alias that routed it, takes ``?alias=`` and
    ``?version=``, and keeps a request id on its side of a canary split, as ``/predict``."""
    blank = io.BytesIO()
    Image.new("L", (8, 8), color=255).save(blank, format="PNG")

    def image(query: str = "", **headers: str) -> dict[str, Any]:
        response = client.post(
            f"/models/m/predict/image{query}",
            content=blank.getvalue(),
            headers={"Content-Type": "image/png", **headers},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["predictions"][0]["label"] == int(body["version"])
        return body

    assert (image()["version"], image()["alias"]) == ("1", "production")
    move(client, "staging", 2)
    assert (image("?alias=staging")["version"], image("?alias=staging")["alias"]) == (
        "2",
        "staging",
    )
    assert image("?version=3")["alias"] is None
    put = client.put("/models/m/traffic", json={"production": 50, "staging": 50}, headers=ADMIN)
    assert put.status_code == 200, put.text
    for i in range(10):  # a request id sticks to the side /predict puts it on
        side = answer(client, **{"X-Request-Id": f"user-{i}"})["version"]
        assert {image(**{"X-Request-Id": f"user-{i}"})["version"] for _ in range(3)} == {side}


def test_shadow_scores_the_same_rows_and_counts_agreement(client: TestClient) -> None:
    """Production answers; the shadow version scores the rows off the request path; its
    agreement (0: it always says 2 where production says 1) shows in /models and /metrics."""
    move(client, "staging", 2)
    put = client.put("/models/m/traffic", json={"shadow": "staging"}, headers=ADMIN)
    assert put.status_code == 200, put.text
    for _ in range(30):
        assert answer(client)["version"] == "1"
    stats = _wait_for_shadow(client, rows=30)
    assert stats == {
        "version": 1, "shadow_version": 2, "compared": 30, "agreed": 0, "agreement_rate": 0.0,
    }  # fmt: skip
    metrics = client.get("/metrics").text
    assert _sample(metrics, "digits_shadow_rows_total", version="1", shadow="2") == 30
    assert _sample(metrics, "digits_shadow_agreements_total", version="1", shadow="2") == 0


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code", "names"),
    [
        pytest.param("PUT", "/models/nope/aliases/staging", {"version": 1, "reason": "x"},
                     404, "model_not_found", "m", id="move-unknown-model"),
        pytest.param("PUT", "/models/m/aliases/staging", {"version": 9, "reason": "x"},
                     404, "version_not_found", "1, 2, 3", id="move-unknown-version"),
        pytest.param("PUT", "/models/m/aliases/Bad!", {"version": 1, "reason": "x"},
                     422, "invalid_input", "lower-case", id="move-bad-alias-name"),
        pytest.param("PUT", "/models/m/aliases/staging", {"version": 1},
                     422, "invalid_input", "reason", id="move-without-reason"),
        pytest.param("POST", "/models/m/predict?alias=nope", PIXELS,
                     404, "alias_not_found", "production", id="predict-unknown-alias"),
        pytest.param("POST", "/models/m/predict?alias=production&version=1", PIXELS,
                     422, "invalid_input", "one of them", id="predict-version-and-alias"),
        pytest.param("GET", "/models/nope/history", None,
                     404, "model_not_found", "m", id="history-unknown-model"),
        pytest.param("PUT", "/models/m/traffic", {"production": -10, "staging": 110},
                     422, "invalid_input", "90", id="traffic-negative-weight"),
        pytest.param("PUT", "/models/m/traffic", {"production": 90, "staging": 20},
                     422, "invalid_input", "90", id="traffic-sum-not-100"),
        pytest.param("PUT", "/models/m/traffic", {"production": 90, "nope": 10},
                     422, "invalid_input", "production, staging", id="traffic-unknown-alias"),
        pytest.param("PUT", "/models/m/traffic", {"shadow": "nope"},
                     422, "invalid_input", "production, staging", id="shadow-unknown-alias"),
        pytest.param("PUT", "/models/nope/traffic", {},
                     404, "model_not_found", "m", id="traffic-unknown-model"),
        pytest.param("POST", "/models/m/aliases/staging/rollback", None,
                     409, "nothing_to_roll_back", "PUT", id="rollback-never-moved"),
    ],
)  # fmt: skip
def test_bad_calls_answer_a_clear_4xx(
    client: TestClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    code: str,
    names: str,
) -> None:
    """Unknown model, version or alias: 404 naming what exists; bad weights or aliases: 422."""
    move(client, "staging", 2)
    response = client.request(method, path, json=body, headers=ADMIN)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert names in f"{error['message']} {error['expected']}"


def _wait_for_shadow(client: TestClient, rows: int) -> dict[str, Any]:
    """The shadow stats of ``m`` once ``rows`` rows were compared (at most 10 s)."""
    for _ in range(200):
        stats = client.get("/models/m").json()["traffic"]["shadow_stats"]
        if stats and stats[0]["compared"] >= rows:
            return dict(stats[0])
        client.portal.call(anyio.sleep, 0.05)  # type: ignore[attr-defined]
    raise TimeoutError(f"the shadow compared fewer than {rows} rows: {stats}")


def _sample(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            total += float(match.group(2))
    return total


@pytest.mark.anyio
async def test_a_full_shadow_queue_drops_and_counts_never_delays(tmp_path: Path) -> None:
    """With room for one queued request, a burst of 50 concurrent requests is all answered
    by production; each request is either compared by the shadow or counted as dropped."""
    for version in (1, 2):
        write_artifact(tmp_path / "models", "m", version, lit(version))
    settings = make_settings(tmp_path / "models", default_model="m", shadow_queue_size=1)
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        await client.put("/models/m/aliases/staging", json={"version": 2, "reason": "try"})
        await client.put("/models/m/traffic", json={"shadow": "staging"})
        answers = await asyncio.gather(
            *(client.post("/models/m/predict", json=PIXELS) for _ in range(50))
        )
        assert {a.json()["version"] for a in answers} == {"1"}
        await asyncio.sleep(0.3)  # a few drain intervals: what was queued is scored
        traffic = (await client.get("/models/m")).json()["traffic"]
        compared = sum(s["compared"] for s in traffic["shadow_stats"])
        assert traffic["shadow_dropped"] > 0
        assert compared + traffic["shadow_dropped"] == 50
        metrics = (await client.get("/metrics")).text
        assert (
            _sample(metrics, "digits_shadow_dropped_total", model="m") == traffic["shadow_dropped"]
        )


def test_a_move_expecting_another_version_is_409_and_moves_nothing(client: TestClient) -> None:
    move(client, "staging", 1)
    body = {"version": 2, "reason": "checked v3 first", "expect": 3}
    refused = client.put("/models/m/aliases/staging", json=body, headers=ADMIN)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "alias_changed"
    assert client.get("/models/m").json()["aliases"]["staging"] == 1
    body["expect"] = 1
    assert client.put("/models/m/aliases/staging", json=body, headers=ADMIN).json()["previous"] == 1


def test_the_gate_reads_an_out_of_fold_accuracy_as_held_out() -> None:
    """A version fitted on every training row records its out-of-fold accuracy: the gate
    takes it (its rows were held out of the fits that scored them) rather than scoring the
    validation rows, which that version was fitted on."""
    from service.inference.validation import accuracy, validation_rows
    from training.data import load_split, out_of_fold_record

    def no_forward() -> Any:
        raise AssertionError("a recorded held-out figure needs no forward")

    manifest = read_manifest(SHIPPED_MODELS / "logistic" / "1")
    oof = manifest.model_copy(
        update={"validation": {**out_of_fold_record(load_split()), "accuracy": 0.875}}
    )
    assert accuracy(oof, no_forward, validation_rows()) == 0.875
    other = manifest.model_copy(update={"validation": {"from": "elsewhere", "accuracy": 0.9}})
    module = torch.jit.load(str(SHIPPED_MODELS / "logistic" / "1" / "model.pt"))
    forward = TorchScriptRuntime(module, "cpu").forward
    measured = accuracy(other, lambda: forward, validation_rows())  # measured, not the record
    assert measured != 0.9
    assert measured > 0.9
