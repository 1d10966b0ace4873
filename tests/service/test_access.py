"""Access: every route the app serves declares what it needs (the app does not start
otherwise), and the declarations hold for every route x {no key, read key, admin key, wrong
key}, whatever serves the route."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from service.http.access import exposure_problem
from service.http.app import create_app
from service.http.policy import ADMIN, OPEN, READ, Access, RouteTable, UndeclaredRoute
from service.http.routes import metrics
from service.settings import Settings
from tests.conftest import make_settings

READ_KEY, ADMIN_KEY = "read-key-0123456789", "admin-key-0123456789"
PATH_VALUES = {"{name}": "cnn", "{job_id}": "0" * 32, "{fmt}": "png", "{version}": "1"}
REPO = Path(__file__).resolve().parents[2]


def served_routes(app: FastAPI) -> list[str]:
    """``METHOD /path`` of every route the app serves, included routers and the routes
    outside the OpenAPI schema (the docs pages) too."""
    return sorted(
        f"{method} {context.path}"
        for context in iter_route_contexts(app.routes)
        for method in getattr(context, "methods", None) or ()
        if method != "HEAD"
    )


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, tiny_models: Path) -> Iterator[TestClient]:
    """A started app with a read key and an admin key."""
    models = tmp_path_factory.mktemp("access") / "models"
    models.symlink_to(tiny_models)
    settings = make_settings(models, read_api_key=READ_KEY, admin_api_key=ADMIN_KEY)
    with TestClient(create_app(settings)) as client:
        yield client


def declared(app: FastAPI) -> dict[str, Access]:
    """What each served route declares (``METHOD /path`` -> access)."""
    table = RouteTable.of(app.routes)
    return {route: table.access(*route.split(" ", 1)) for route in served_routes(app)}


#: The routes that take a body but change nothing: inference. Every other route that is not
#: a GET changes state and must need the admin key.
INFERENCE = {
    "POST /predict",
    "POST /models/{name}/predict",
    "POST /models/{name}/explain",
    "POST /predict/image",
    "POST /models/{name}/predict/image",
    "POST /v2/models/{name}/infer",
    "POST /v2/models/{name}/versions/{version}/infer",
}


def test_every_route_that_changes_state_needs_the_admin_key(keyed: TestClient) -> None:
    """Declared on the routes themselves: inference needs the read key, everything else that
    is not a GET the admin key; the probes, docs and console page are open."""
    levels = declared(keyed.app)  # type: ignore[arg-type]
    writes = {r: a for r, a in levels.items() if not r.startswith("GET ") and r not in INFERENCE}
    assert set(writes.values()) == {ADMIN}
    assert {levels[r] for r in INFERENCE} == {READ}
    opened = {r.removeprefix("GET ") for r, a in levels.items() if a is OPEN}
    assert opened == {
        "/health/live", "/health/ready", "/v2/health/live", "/v2/health/ready",
        "/v2/models/{name}/ready", "/v2/models/{name}/versions/{version}/ready", "/metrics",
        "/docs", "/docs/assets/{name}", "/redoc", "/openapi.json", "/", "/console/assets/{name}",
    }  # fmt: skip


def test_a_route_without_a_declaration_stops_the_start(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A route added without ``@needs`` is named, and the app is not built."""

    async def undeclared() -> dict[str, str]:
        return {}

    monkeypatch.setattr(metrics.router, "routes", list(metrics.router.routes))
    metrics.router.add_api_route("/undeclared", undeclared, methods=["POST"])
    with pytest.raises(UndeclaredRoute, match="POST /undeclared"):
        create_app(make_settings(models_dir))


def _call(client: TestClient, route: str, headers: dict[str, str]) -> int:
    method, _, path = route.partition(" ")
    for template, value in PATH_VALUES.items():
        path = path.replace(template, value)
    body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return client.request(method, path, headers=headers, **body).status_code  # type: ignore[arg-type]


CASES = {
    "no-key": ({}, {OPEN: "pass", READ: 401, ADMIN: 401}),
    "wrong-key": ({"Authorization": "Bearer nope"}, {OPEN: "pass", READ: 403, ADMIN: 403}),
    "read-key": ({"X-API-Key": READ_KEY}, {OPEN: "pass", READ: "pass", ADMIN: 403}),
    "admin-key": ({"Authorization": f"Bearer {ADMIN_KEY}"}, {a: "pass" for a in Access}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_route_answers_its_key_as_the_table_says(keyed: TestClient, case: str) -> None:
    """Walks every served route with one kind of key: 401, 403, or past the guard."""
    headers, expected = CASES[case]
    wrong = {}
    for route, access in declared(keyed.app).items():  # type: ignore[arg-type]
        status = _call(keyed, route, headers)
        want = expected[access]
        passed = status not in (401, 403)
        if (want == "pass" and not passed) or (want != "pass" and status != want):
            wrong[route] = (status, want)
    assert wrong == {}


def test_anonymous_promotion_is_refused_naming_the_admin_key(keyed: TestClient) -> None:
    """The attack of the issue: a 1-iteration promoted job without a key gets a 401 that says
    which key the route needs; with the read key it is a 403."""
    job = {"family": "cnn", "promote": True, "hyperparameters": {"iterations": 1}}
    response = keyed.post("/train", json=job)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["message"] == "this route needs the admin key"
    assert keyed.post("/train", json=job, headers={"X-API-Key": READ_KEY}).status_code == 403
    predict = keyed.post("/predict", json={"pixels": [0] * 64})
    assert predict.status_code == 401
    assert predict.json()["error"]["message"] == "this route needs the read key"


def test_admin_key_alone_guards_only_the_admin_routes(models_dir: Path) -> None:
    """With only the admin key set (compose's default), reads are open and training is not."""
    with TestClient(create_app(make_settings(models_dir, admin_api_key=ADMIN_KEY))) as client:
        assert client.post("/predict", json={"pixels": [0] * 64}).status_code == 200
        assert client.get("/train").status_code == 200
        refused = client.post("/train", json={"family": "logistic"})
        assert refused.status_code == 401
        assert refused.json()["error"]["message"] == "this route needs the admin key"


def test_read_key_alone_also_guards_the_admin_routes(models_dir: Path) -> None:
    """With only the read key set, the admin routes need it too: nothing is left open."""
    with TestClient(create_app(make_settings(models_dir, read_api_key=READ_KEY))) as client:
        assert client.post("/train", json={"family": "svm"}).status_code == 401
        keyed = client.post("/train", json={"family": "svm"}, headers={"X-API-Key": READ_KEY})
        assert keyed.status_code == 422  # past the guard, to validation


def test_routes_are_open_without_keys(client: TestClient) -> None:
    """With no key set nothing asks for one (the embedded default on loopback)."""
    assert client.post("/predict", json={"pixels": [0] * 64}).status_code == 200
    assert client.get("/train").status_code == 200


def test_openapi_states_what_each_operation_needs(keyed: TestClient) -> None:
    """Swagger UI shows a lock on the keyed operations and none on the open ones."""
    paths = keyed.get("/openapi.json").json()["paths"]
    assert paths["/train"]["post"]["security"] == [{"bearer": []}, {"apiKey": []}]
    assert "admin key" in paths["/train"]["post"]["description"]
    assert "read key" in paths["/predict"]["post"]["description"]
    assert paths["/health/ready"]["get"]["security"] == []


def test_openapi_says_a_key_is_optional_where_the_settings_leave_a_route_open(
    client: TestClient,
) -> None:
    """No keys set: every operation admits no key (``{}``), so a client or a fuzzer reading
    the schema does not expect a 401 that never comes."""
    paths = client.get("/openapi.json").json()["paths"]
    assert paths["/train"]["post"]["security"] == [{"bearer": []}, {"apiKey": []}, {}]
    assert paths["/train"]["get"]["security"] == [{"bearer": []}, {"apiKey": []}, {}]


def test_keys_are_read_from_files(tmp_path: Path) -> None:
    """``*_API_KEY_FILE`` holds the key (a Docker secret), surrounding whitespace dropped."""
    (tmp_path / "admin").write_text("s3cret-admin\n")
    settings = Settings(admin_api_key_file=tmp_path / "admin", _env_file=None)  # type: ignore[call-arg]
    assert settings.admin_api_key is not None
    assert settings.admin_api_key.get_secret_value() == "s3cret-admin"


@pytest.mark.parametrize(
    ("content", "both", "message"),
    [
        pytest.param(None, False, "cannot read", id="missing-file"),
        pytest.param("  \n", False, "is empty", id="empty-file"),
        pytest.param("k", True, "not both", id="key-and-file"),
    ],
)
def test_bad_key_files_are_refused(
    tmp_path: Path, content: str | None, both: bool, message: str
) -> None:
    """A key file that cannot be read or is empty, or a key set twice, stops the start."""
    path = tmp_path / "read"
    if content is not None:
        path.write_text(content)
    extra = {"read_api_key": "also"} if both else {}
    with pytest.raises(ValueError, match=message):
        Settings(read_api_key_file=path, _env_file=None, **extra)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("host", "extra", "refused"),
    [
        pytest.param("127.0.0.1", {}, False, id="loopback"),
        pytest.param("::1", {}, False, id="ipv6-loopback"),
        pytest.param("localhost", {}, False, id="localhost"),
        pytest.param("0.0.0.0", {}, True, id="all-interfaces"),
        pytest.param("0.0.0.0", {"admin_api_key": "k" * 16}, False, id="with-admin-key"),
        pytest.param("0.0.0.0", {"admin_api_key": "k" * 15}, True, id="short-admin-key"),
        pytest.param(
            "0.0.0.0", {"admin_api_key": "k" * 16, "read_api_key": "r" * 15}, True, id="short-read"
        ),
        pytest.param("127.0.0.1", {"admin_api_key": "k"}, False, id="short-key-on-loopback"),
        pytest.param("0.0.0.0", {"allow_unauthenticated": True}, False, id="opted-out"),
        pytest.param("0.0.0.0", {"admin_api_key": " "}, True, id="blank-key-is-no-key"),
    ],
)
def test_exposed_without_admin_key_is_refused(
    host: str, extra: dict[str, object], refused: bool
) -> None:
    """Binding beyond loopback needs an admin key of at least 16 characters (a shorter one
    falls to guessing), or an explicit opt-out."""
    settings = Settings(host=host, _env_file=None, **extra)  # type: ignore[arg-type]
    assert (exposure_problem(settings) is not None) is refused


def test_service_refuses_to_start_exposed_without_a_key(tmp_path: Path) -> None:
    """``python -m service --host 0.0.0.0`` without a key exits 2 saying how to set one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITS_")}
    result = subprocess.run(
        [sys.executable, "-m", "service", "--host", "0.0.0.0", "--port", "0"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "DIGITS_ADMIN_API_KEY" in result.stderr
    assert "DIGITS_ALLOW_UNAUTHENTICATED=1" in result.stderr


def test_open_readiness_says_why_without_paths_the_read_key_sees_them(
    tmp_path: Path, tiny_models: Path
) -> None:
    """With a read key set, ``/health/ready`` without it says ready or not and why, with no
    folder path or checksum; with the read key, the refused folder and its reason."""
    models = tmp_path / "models"
    shutil.copytree(tiny_models, models)
    broken = models / "cnn" / "9"
    shutil.copytree(models / "cnn" / "1", broken)
    (broken / "model.pt").write_bytes(b"not the model the manifest's sha256 names")
    settings = make_settings(models, read_api_key=READ_KEY, admin_api_key=ADMIN_KEY)
    with TestClient(create_app(settings)) as client:
        anonymous = client.get("/health/ready")
        keyed = client.get("/health/ready", headers={"X-API-Key": READ_KEY})
    assert anonymous.status_code == keyed.status_code == 200
    assert str(tmp_path) not in anonymous.text
    assert "sha256" not in anonymous.text
    assert anonymous.json()["refused_folders"] == 1
    assert anonymous.json()["models"]["cnn"] == {"ready": True, "reason": None}
    assert str(broken) in keyed.json()["failures"]


def test_opting_out_of_keys_is_said_at_start_and_on_readiness(
    models_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``DIGITS_ALLOW_UNAUTHENTICATED=1`` on an exposed address: a warning in the log at
    start, and on ``/health/ready`` for as long as it runs."""
    settings = make_settings(models_dir, host="0.0.0.0", allow_unauthenticated=True)
    with caplog.at_level(logging.WARNING), TestClient(create_app(settings)) as client:
        warning = client.get("/health/ready").json()["warning"]
    assert "DIGITS_ALLOW_UNAUTHENTICATED=1" in warning
    assert any("DIGITS_ALLOW_UNAUTHENTICATED=1" in r.getMessage() for r in caplog.records)
    with TestClient(create_app(make_settings(models_dir))) as client:
        assert "warning" not in client.get("/health/ready").json()
