"""HTTP edges every route shares: media types, slow bodies, methods and ``Allow``."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from fastapi.testclient import TestClient

from service.http.app import create_app
from service.settings import Settings
from tests.conftest import make_settings

PIXELS = {"pixels": [0] * 64}


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("text/plain", id="text-plain"),
        pytest.param("application/x-www-form-urlencoded", id="form"),
        pytest.param("multipart/form-data; boundary=x", id="multipart"),
    ],
)
def test_predict_refuses_bodies_that_are_not_json(client: TestClient, content_type: str) -> None:
    """What a cross-site form could send without CORS is a 415 naming the media type."""
    response = client.post(
        "/predict", content=b'{"pixels": [0]}', headers={"Content-Type": content_type}
    )
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert error["expected"].startswith("Content-Type: application/json")


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/x+json"]
)
def test_predict_takes_json_media_types(client: TestClient, content_type: str) -> None:
    """JSON, with parameters or as a ``+json`` type, is accepted."""
    body = b'{"pixels": [' + b",".join([b"0"] * 64) + b"]}"
    response = client.post("/predict", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/train", "GET, HEAD, OPTIONS, POST"),
        ("POST", "/train/abc", "DELETE, GET, HEAD, OPTIONS"),
        ("GET", "/predict", "OPTIONS, POST"),
    ],
)
def test_wrong_method_lists_every_method_of_the_path(
    client: TestClient, method: str, path: str, allow: str
) -> None:
    """A 405 names every method the path serves (not one route's), in ``Allow`` and the body."""
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_a_method_the_path_does_not_serve_is_405_whatever_the_body_type(
    client: TestClient,
) -> None:
    """TRACE with an image body on the image route: 405 (the method), not 415 (the body type
    the route would take only for a method it serves)."""
    response = client.request(
        "TRACE", "/predict/image", content=b"\x89PNG", headers={"Content-Type": "image/png"}
    )
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_options_answers_the_allowed_methods(client: TestClient) -> None:
    """``OPTIONS`` on a served path is a 204 whose ``Allow`` lists its methods."""
    response = client.options("/train")
    assert response.status_code == 204
    assert response.headers["allow"] == "GET, HEAD, OPTIONS, POST"


@contextmanager
def live_server(settings: Settings) -> Iterator[int]:
    """The app on a real uvicorn server on a free port of 127.0.0.1, in a thread."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start within 60 s"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_a_body_that_stops_arriving_is_dropped_with_408(settings: Settings) -> None:
    """A client that announces 1,000 bytes and sends 10 gets a 408 once the read timeout
    passes, and its connection is closed (no task held open by a slow client)."""
    settings = make_settings(settings.models_dir, body_read_timeout_s=0.5)
    with live_server(settings) as port, socket.create_connection(("127.0.0.1", port)) as conn:
        conn.settimeout(10)
        start = time.monotonic()
        conn.sendall(
            b"POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + b'{"pixels":'
        )
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        waited = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"code":"request_timeout"' in answer
    assert 0.4 < waited < 5
