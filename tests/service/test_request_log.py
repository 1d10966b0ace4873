"""Access lines and request ids: one line per request from the outer middleware (the predict
fast path included), in text or JSON, naming the key that passed but never the key itself;
``X-Request-Id`` on every answer, the same id in every error body and in the access line."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.errors import public_message
from service.http.app import create_app
from service.http.request_log import ACCESS_LOGGER, JsonFormatter
from tests.conftest import make_settings
from tests.service.live import running_service

READ_KEY = "read-key-0123456789"
AUTH = {"Authorization": f"Bearer {READ_KEY}"}
ROW = [0.0] * 64
#: The text access line: client "METHOD path" status duration id= key= [model= version=].
TEXT_LINE = re.compile(
    r'^(?P<client>\S+) "(?P<method>[A-Z]+) (?P<path>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) '
    r"(?P<ms>\d+\.\d\d)ms id=(?P<id>\S+) key=(?P<key>\S+)"
    r"(?: model=(?P<model>\S+) version=(?P<version>\d+))?$"
)
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, tiny_models: Path) -> Iterator[TestClient]:
    """A started app with a read key."""
    models = tmp_path_factory.mktemp("request-log") / "models"
    models.symlink_to(tiny_models)
    settings = make_settings(models, read_api_key=READ_KEY)
    app = create_app(settings)
    app.add_api_route("/boom", _boom)  # a fault no route has: the catch-all 500
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


async def _boom() -> None:
    raise RuntimeError("a bug")


def access_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS_LOGGER]


def line_of(caplog: pytest.LogCaptureFixture, request_id: str) -> dict[str, str]:
    """The fields of the one text access line of the request ``request_id``."""
    found = [m for r in access_lines(caplog) if (m := TEXT_LINE.match(r.getMessage()))]
    mine = [m.groupdict() for m in found if m["id"] == request_id]
    assert len(mine) == 1, [r.getMessage() for r in access_lines(caplog)]
    return mine[0]


def test_one_text_line_per_request_with_its_fields(
    keyed: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A GET, a POST /predict (the fast path: model and version), a 4xx and an
    authenticated request: one line each, the key's name and never the key."""
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    answers = [
        keyed.get("/health/live", headers={"X-Request-Id": "get-1"}),
        keyed.post("/predict", json={"instances": [ROW]}, headers={**AUTH, "X-Request-Id": "p-1"}),
        keyed.get("/models", headers={"X-Request-Id": "no-key-1"}),
        keyed.get("/models/nope", headers={**AUTH, "X-Request-Id": "missing-1"}),
    ]
    assert [a.status_code for a in answers] == [200, 200, 401, 404]
    assert len(access_lines(caplog)) == len(answers)
    get = line_of(caplog, "get-1")
    assert (get["client"], get["method"], get["path"], get["status"]) == (
        "testclient", "GET", "/health/live", "200",
    )  # fmt: skip
    assert get["key"] == "-"
    assert get["model"] is None
    predict = line_of(caplog, "p-1")
    body = answers[1].json()
    assert (predict["method"], predict["path"], predict["status"]) == ("POST", "/predict", "200")
    assert (predict["key"], predict["model"]) == ("read", body["model"])
    assert predict["version"] == body["version"]
    assert line_of(caplog, "no-key-1")["status"] == "401"
    assert line_of(caplog, "no-key-1")["key"] == "-"
    missing = line_of(caplog, "missing-1")
    assert (missing["status"], missing["key"]) == ("404", "read")
    assert all(READ_KEY not in r.getMessage() for r in access_lines(caplog))


def test_a_path_with_a_newline_stays_one_line(
    keyed: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The path is percent-decoded: a ``%0A`` in it must not start a forged line."""
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    keyed.get('/x%0A127.0.0.1%20"GET%20/admin"%20200', headers={"X-Request-Id": "nl-1"})
    (record,) = access_lines(caplog)
    assert "\n" not in record.getMessage()
    line = line_of(caplog, "nl-1")
    assert (line["path"], line["status"]) == ('/x\\n127.0.0.1 \\"GET /admin\\" 200', "401")


def test_json_line_of_a_predict_parses_with_every_field(
    keyed: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    answer = keyed.post(
        "/predict?version=1", json={"instances": [ROW]}, headers={**AUTH, "X-Request-Id": "j-1"}
    )
    (record,) = access_lines(caplog)
    text = JsonFormatter().format(record)
    assert "\n" not in text
    line = json.loads(text)
    assert line["logger"] == ACCESS_LOGGER
    assert line["level"] == "INFO"
    assert {k: line[k] for k in ("method", "path", "status", "client", "request_id")} == {
        "method": "POST", "path": "/predict", "status": 200, "client": "testclient",
        "request_id": "j-1",
    }  # fmt: skip
    assert (line["key_id"], line["model"], line["version"]) == ("read", answer.json()["model"], 1)
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] > 0


def test_no_line_is_built_while_the_access_logger_is_off(
    keyed: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=ACCESS_LOGGER)
    keyed.get("/health/live")
    assert access_lines(caplog) == []


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(None, id="absent"),
        pytest.param("x" * 129, id="too-long"),
        pytest.param("two words", id="space"),
        pytest.param("id\tx", id="control"),
        pytest.param("", id="empty"),
        pytest.param("ü-id".encode(), id="not-ascii"),
    ],
)
def test_a_missing_or_malformed_request_id_is_replaced(
    keyed: TestClient, sent: str | bytes | None
) -> None:
    headers = {} if sent is None else {"X-Request-Id": sent}
    answer = keyed.get("/health/live", headers=headers)
    assert GENERATED_ID.fullmatch(answer.headers["x-request-id"])
    again = keyed.get("/health/live", headers=headers)
    assert again.headers["x-request-id"] != answer.headers["x-request-id"]


def test_a_sane_request_id_is_echoed(keyed: TestClient) -> None:
    sent = "Req.42:a_b-" + "x" * 117  # 128 characters, every kind allowed
    assert keyed.get("/health/live", headers={"X-Request-Id": sent}).headers["x-request-id"] == (
        sent
    )


#: Error answers from each layer that writes one: (method, path, headers, body).
ERRORS = [
    pytest.param("GET", "/models", {}, None, 401, id="access-401"),
    pytest.param("GET", "/models/nope", AUTH, None, 404, id="route-404"),
    pytest.param("GET", "/no/such/path", AUTH, None, 404, id="router-404"),
    pytest.param("DELETE", "/predict", AUTH, None, 405, id="router-405"),
    pytest.param("POST", "/predict", AUTH, b'{"instances": [[1]]}', 422, id="fast-path-422"),
    pytest.param("POST", "/predict", AUTH, b"x" * (5 * 2**20), 413, id="body-limit-413"),
    pytest.param("POST", "/train", AUTH, b"{}", 422, id="validation-422"),
    pytest.param("POST", "/v2/models/cnn/infer", AUTH, b"{}", 400, id="v2-400"),
    pytest.param("GET", "/jobs", {**AUTH, "X-Request-Timeout-Ms": "x"}, None, 422, id="deadline"),
    pytest.param("GET", "/boom", AUTH, None, 500, id="catch-all-500"),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "status"), ERRORS)
@pytest.mark.parametrize("sent", [None, "client-id-7"])
def test_every_error_body_carries_the_request_id_of_its_header(
    keyed: TestClient,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    status: int,
    sent: str | None,
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    own = {} if sent is None else {"X-Request-Id": sent}
    content = {"Content-Type": "application/json"} if body else {}
    answer = keyed.request(method, path, content=body, headers={**headers, **own, **content})
    assert answer.status_code == status, answer.text
    request_id = answer.headers["x-request-id"]
    assert request_id == sent if sent else GENERATED_ID.fullmatch(request_id)
    assert answer.json()["request_id"] == request_id
    assert line_of(caplog, request_id)["status"] == str(status)


def test_an_upload_that_is_no_image_says_so_without_a_python_repr(keyed: TestClient) -> None:
    for data, says in [
        (b"plain text, no image", "start with neither a PNG nor a JPEG signature"),
        (b"GIF89a\x01\x00\x01\x00", "a GIF image"),
        (b"\x89PNG\r\n\x1a\n broken", "PNG or JPEG header is damaged"),
        (b"", "the body is empty"),
    ]:
        answer = keyed.post(
            "/predict/image", content=data, headers={**AUTH, "Content-Type": "image/png"}
        )
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert "<_io" not in error["message"]
        assert "object at 0x" not in error["message"]
        assert "not a PNG or JPEG image" in error["message"]
        assert says in error["message"]
        assert "PNG or JPEG" in error["expected"]


def test_a_job_error_shown_over_http_names_no_object_address() -> None:
    message = public_message(ValueError(f"cannot use {object()} here"))
    assert message == "ValueError: cannot use <object> here"


def test_the_service_writes_json_access_lines_and_no_uvicorn_ones(
    tmp_path: Path, tiny_models: Path
) -> None:
    """``python -m service`` with ``DIGITS_LOG_FORMAT=json``: every line of its output is a
    JSON object, one access line per request (uvicorn's own access log is off)."""
    settings = {"DIGITS_LOG_FORMAT": "json", "DIGITS_READ_API_KEY": READ_KEY}
    with running_service(tiny_models, tmp_path, settings) as service:
        with httpx.Client(base_url=service.url, timeout=10) as http:
            http.get("/health/live", headers={"X-Request-Id": "live-1"})
            http.post(
                "/predict", json={"instances": [ROW]}, headers={**AUTH, "X-Request-Id": "p-1"}
            )
            http.get("/models", headers={"X-Request-Id": "denied-1"})
        service.stop()
    lines = [json.loads(line) for line in service.output().splitlines() if line.strip()]
    access = {line["request_id"]: line for line in lines if line["logger"] == ACCESS_LOGGER}
    assert {"live-1", "p-1", "denied-1"} <= set(access)
    assert sum(1 for line in lines if line.get("request_id") == "p-1") == 1
    assert not any(line["logger"].startswith("uvicorn.access") for line in lines)
    predict = access["p-1"]
    assert (predict["status"], predict["key_id"], predict["model"]) == (200, "read", "cnn")
    assert predict["version"] == 1
    assert predict["client"] == "127.0.0.1"
    assert (access["denied-1"]["status"], access["denied-1"]["key_id"]) == (401, None)
    assert READ_KEY not in service.output()


def test_a_json_line_stays_one_line_for_any_path(
    keyed: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """U+2028 is a line break to some readers (``str.splitlines``): escaped like ``\\n``."""
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    keyed.get("/a%E2%80%A8b%0Ac", headers={"X-Request-Id": "ls-1"})
    (record,) = access_lines(caplog)
    text = JsonFormatter().format(record)
    assert len(text.splitlines()) == 1
    assert json.loads(text)["path"] == "/a\u2028b\nc"


def test_access_lines_reach_the_log_within_a_second_while_the_service_runs(
    tiny_models: Path, tmp_path: Path
) -> None:
    """The access lines are written through a buffer (one write a half second, not one a
    request), yet an operator following the log sees a request's line within a second,
    before the service stops; and every line of a burst arrives, none lost or cut."""
    import time

    with running_service(tiny_models, tmp_path, {"DIGITS_LOG_FORMAT": "json"}) as service:
        with httpx.Client(base_url=service.url) as http:
            for n in range(200):
                http.get("/health/live", headers={"X-Request-Id": f"burst-{n}"})
        deadline = time.monotonic() + 1.5
        seen: set[str] = set()
        while time.monotonic() < deadline and len(seen) < 200:
            lines = service.output().splitlines()
            seen = {json.loads(x).get("request_id") for x in lines if x.startswith("{")}
            seen = {s for s in seen if s and s.startswith("burst-")}
            time.sleep(0.05)
        assert service.process.poll() is None  # still running: nothing was flushed by an exit
    assert len(seen) == 200
