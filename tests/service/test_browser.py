"""Another site's page cannot use the service through a visitor's browser: its cross-site
writes are refused (keys set or not), a rebinding ``Host`` is refused, a form body is
refused; clients that are no browser (curl, httpx, tritonclient) are not affected.

The headers are those Chromium sends: a cross-site HTML form POST, and a ``no-cors`` fetch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.http.access import allowed_hosts
from service.http.app import create_app
from service.settings import Settings
from tests.conftest import make_settings

ADMIN_KEY = "admin-key-0123456789"
EVIL = "https://evil.example"
#: Chromium's headers on a form on https://evil.example POSTed to the service.
FORM_POST = {
    "Content-Type": "application/x-www-form-urlencoded",
    "Origin": EVIL,
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-User": "?1",
}
#: Chromium's headers on ``fetch(url, {method: "POST", mode: "no-cors"})`` from that page.
NO_CORS_FETCH = {
    "Origin": EVIL,
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "no-cors",
    "Sec-Fetch-Dest": "empty",
}
ROLLBACK = "/models/cnn/aliases/production/rollback"
UNLOAD = "/v2/repository/models/logistic/unload"


@pytest.fixture
def open_client(models_dir: Path) -> Iterator[TestClient]:
    """No keys set: the embedded default on 127.0.0.1."""
    with TestClient(create_app(make_settings(models_dir))) as client:
        yield client


def _ready(client: TestClient, model: str) -> bool:
    return client.get(f"/v2/models/{model}/ready").status_code == 200


def test_a_cross_site_form_post_moves_nothing(open_client: TestClient) -> None:
    """The issue's attack: a plain form POSTed to a rollback is a 403, not a move."""
    before = open_client.get("/models/cnn/history").json()
    response = open_client.post(ROLLBACK, headers=FORM_POST)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "cross_site"
    assert open_client.get("/models/cnn/history").json() == before


def test_a_no_cors_fetch_unloads_nothing(open_client: TestClient) -> None:
    """The issue's other attack: a no-cors fetch (no body, no Content-Type) to unload."""
    response = open_client.post(UNLOAD, headers=NO_CORS_FETCH)
    assert response.status_code == 403
    assert _ready(open_client, "logistic")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Sec-Fetch-Site": "same-site"}, id="another-port-same-site"),
        pytest.param({"Origin": EVIL}, id="old-browser-origin-only"),
        pytest.param({"Origin": "null"}, id="sandboxed-page"),
    ],
)
def test_other_pages_cannot_write_either(open_client: TestClient, headers: dict[str, str]) -> None:
    """A page on another port of the same host, or a browser that sends only ``Origin``."""
    assert open_client.post(UNLOAD, headers=headers).status_code == 403
    assert _ready(open_client, "logistic")


def test_cross_site_writes_are_refused_with_keys_set_too(models_dir: Path) -> None:
    """A key does not make a cross-site write acceptable (a 403 before the key check)."""
    settings = make_settings(models_dir, admin_api_key=ADMIN_KEY)
    with TestClient(create_app(settings)) as client:
        keyed = {**NO_CORS_FETCH, "X-API-Key": ADMIN_KEY}
        assert client.post(UNLOAD, headers=keyed).json()["error"]["code"] == "cross_site"
        assert _ready(client, "logistic")


def test_the_services_own_pages_and_plain_clients_still_write(open_client: TestClient) -> None:
    """The console (same origin, as Chromium marks it) and a client sending neither header
    nor a Content-Type (tritonclient's load/unload) change state as before; reads from
    anywhere still answer."""
    same_origin = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert open_client.post(UNLOAD, headers=same_origin).status_code == 200
    assert open_client.post("/v2/repository/models/logistic/load").status_code == 200
    assert _ready(open_client, "logistic")
    assert open_client.get("/models", headers=NO_CORS_FETCH).status_code == 200


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        pytest.param("/train", "application/x-www-form-urlencoded", id="form-train"),
        pytest.param("/train", "text/plain", id="text-train"),
        pytest.param(ROLLBACK, "multipart/form-data; boundary=x", id="multipart-rollback"),
        pytest.param("/predict/image", "text/plain", id="text-image"),
    ],
)
def test_a_body_that_is_not_json_is_a_415(
    open_client: TestClient, path: str, content_type: str
) -> None:
    """What a form can send, refused before the route runs, naming what is taken."""
    response = open_client.post(path, content=b"a=1", headers={"Content-Type": content_type})
    assert response.status_code == 415
    assert "or none" in response.json()["error"]["expected"]


def test_json_and_the_image_types_pass_the_media_type_check(open_client: TestClient) -> None:
    """``application/...+json`` is JSON; the image route takes images (judged by the route)."""
    vendor_json = {"Content-Type": "application/vnd.digits+json"}
    train = open_client.post("/train", content=b"{}", headers=vendor_json)
    assert train.status_code == 422  # past the check, to validation of the spec
    image = open_client.post("/predict/image", content=b"x", headers={"Content-Type": "image/png"})
    assert image.status_code != 415


def test_a_rebinding_host_is_a_400_on_loopback(models_dir: Path) -> None:
    """DNS rebinding: a page on evil.example resolved to 127.0.0.1 sends its own name. The
    default on a loopback bind answers only the loopback names, any port."""
    settings = make_settings(models_dir, allowed_hosts=None)
    with TestClient(create_app(settings), base_url="http://localhost:8000") as client:
        assert client.get("/health/live").status_code == 200
        refused = client.get("/models", headers={"Host": "evil.example:8000"})
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "invalid_host"
        assert "DIGITS_ALLOWED_HOSTS" in refused.json()["error"]["expected"]
        for host in ("127.0.0.1:8000", "[::1]:8000", "LOCALHOST"):
            assert client.get("/health/live", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize(
    ("host", "allowed", "answered", "refused"),
    [
        pytest.param("0.0.0.0", None, ["anything.example"], [], id="exposed-default-any"),
        pytest.param("0.0.0.0", "digits.example", ["digits.example:443"], ["evil.example"]),
        pytest.param("0.0.0.0", "*.example.org", ["a.example.org"], ["example.org.evil"]),
        pytest.param("127.0.0.1", None, ["localhost"], ["evil.example", None]),
    ],
)
def test_allowed_hosts(
    host: str, allowed: str | None, answered: list[str], refused: list[str | None]
) -> None:
    """``DIGITS_ALLOWED_HOSTS``: names, ``*.domain``; unset: any host when exposed."""
    check = allowed_hosts(Settings(host=host, allowed_hosts=allowed, _env_file=None))  # type: ignore[call-arg]
    assert all(check.allows(name.encode()) for name in answered)
    assert not any(check.allows(name.encode() if name else None) for name in refused)


@pytest.mark.parametrize("page", ["/", "/docs", "/redoc"])
def test_pages_carry_the_security_headers(open_client: TestClient, page: str) -> None:
    """The console and the API docs: a CSP without inline scripts but by hash, no framing,
    no sniffing (the browser tests check the pages work under it)."""
    headers = open_client.get(page).headers
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    policy = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "'unsafe-inline'" not in policy.partition("script-src")[2].partition(";")[0]
