"""``PredictFastPath`` serves the predict routes itself, and answers exactly as they do."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.app import create_app
from service.routes.predict import PredictFastPath
from tests.conftest import SHIPPED_MODELS
from tests.service.conftest import make_settings

ZEROS = [0] * 64
REQUESTS = [
    ("POST", "/predict", {"pixels": ZEROS}),
    ("POST", "/models/cnn/predict", {"instances": [ZEROS, [16] * 64]}),
    ("POST", "/models/fnn/predict?version=1", {"pixels": ZEROS}),
    ("POST", "/models/fnn/predict?version=x", {"pixels": ZEROS}),
    ("POST", "/models/fnn/predict?version=0", {"pixels": ZEROS}),
    ("POST", "/models/fnn/predict?version=9", {"pixels": ZEROS}),
    ("POST", "/models/nope/predict", {"pixels": ZEROS}),
    ("POST", "/predict", {"pixels": [255] * 64}),
    ("POST", "/predict", {"instances": [ZEROS] * 5000}),
    ("POST", "/predict", b"{not json"),
    ("POST", "/predict", b"x" * 200_000),
    ("GET", "/predict", None),
    ("POST", "/predict/", {"pixels": ZEROS}),
    ("POST", "/models/a/b/predict", {"pixels": ZEROS}),
]


def _without_fast_path(app: FastAPI) -> FastAPI:
    app.user_middleware = [m for m in app.user_middleware if m.cls is not PredictFastPath]
    return app


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, TestClient]]:
    if not (SHIPPED_MODELS / "cnn" / "1").is_dir():
        pytest.fail("the shipped models/cnn/1 is missing (it is part of the repository)")
    models = tmp_path_factory.mktemp("fast") / "models"
    shutil.copytree(SHIPPED_MODELS, models)
    settings = make_settings(models, max_rows=1000, max_body_bytes=100_000)
    fast = create_app(settings)
    routed = _without_fast_path(create_app(settings))
    with TestClient(fast) as fast_client, TestClient(routed) as routed_client:
        yield fast_client, routed_client


@pytest.mark.parametrize(("method", "url", "body"), REQUESTS, ids=lambda v: str(v)[:40])
def test_fast_path_answers_as_the_routes(
    clients: tuple[TestClient, TestClient], method: str, url: str, body: Any
) -> None:
    """Same status, headers that matter, body and request metric with and without it."""
    answers = []
    for client in clients:
        kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
        response = client.request(method, url, **kwargs)
        metric_lines = [
            line
            for line in client.get("/metrics").text.splitlines()
            if line.startswith("digits_http_requests_total{") and 'route="/metrics"' not in line
        ]
        answers.append(
            (response.status_code, response.headers.get("content-type"), response.content)
        )
        answers.append(tuple(sorted(metric_lines)))
    assert answers[0] == answers[2]
    assert answers[1] == answers[3]


@pytest.mark.anyio
async def test_fast_path_serves_predict_without_the_router(app: FastAPI) -> None:
    """POST to a predict path never reaches the app behind; anything else does."""
    reached: list[str] = []
    sent: list[dict[str, Any]] = []

    async def behind(scope: dict[str, Any], receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b'{"pixels": [0]}', "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    fast = PredictFastPath(behind)
    for method, path in [("POST", "/predict"), ("POST", "/models/x/predict"), ("GET", "/predict")]:
        scope = {"type": "http", "method": method, "path": path, "query_string": b""}
        await fast({**scope, "headers": [], "app": app}, receive, send)
    assert reached == ["/predict"]  # the GET
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [422, 422]


@pytest.mark.anyio
async def test_body_is_read_from_every_chunk_and_a_disconnect_raises() -> None:
    """``_read_body`` joins a chunked body as ``Request.body()`` does; a disconnect raises."""
    from starlette.requests import ClientDisconnect, Request

    from service.routes.predict import _read_body

    def request_of(messages: list[dict[str, Any]]) -> Request:
        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        return Request({"type": "http", "method": "POST", "headers": []}, receive)

    chunks = [
        {"type": "http.request", "body": b'{"pix', "more_body": True},
        {"type": "http.request", "body": b'els": []}', "more_body": False},
    ]
    assert await _read_body(request_of(chunks)) == b'{"pixels": []}'
    with pytest.raises(ClientDisconnect):
        await _read_body(request_of([{"type": "http.disconnect"}]))
