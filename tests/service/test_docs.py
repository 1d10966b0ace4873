"""/docs and /redoc from local files, and their metrics labels.

The pages themselves are driven in a real browser in ``test_docs_page.py``.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from service.routes.docs import ASSETS, STATIC


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_nothing_from_other_hosts(client: TestClient, page: str) -> None:
    """The HTML of /docs and /redoc names only this service's own URLs (no CDN, no fonts)."""
    response = client.get(page)
    assert response.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[=:(]\s*['"]?([^'")\s>]+)""", response.text)
    assert urls, "the page links no assets"
    assert all(url.startswith("/") for url in urls), urls
    assert "//" not in "".join(urls)


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_docs_assets_are_served_from_the_package(client: TestClient, name: str) -> None:
    """Each vendored file is served byte for byte with its media type."""
    folder, media_type = ASSETS[name]
    response = client.get(f"/docs/assets/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert response.content == (STATIC / folder / name).read_bytes()


@pytest.mark.parametrize("name", ["../../app.py", "LICENSE", "nope.js"])
def test_docs_assets_serve_only_the_listed_files(client: TestClient, name: str) -> None:
    """A name outside the list is a 404 in the service's envelope, never a file from disk."""
    response = client.get(f"/docs/assets/{name}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_vendored_assets_keep_their_licences() -> None:
    """Each vendored package ships its licence beside its files."""
    for folder in {folder for folder, _ in ASSETS.values()}:
        assert (STATIC / folder / "LICENSE").stat().st_size > 0, folder


def test_metrics_label_docs_and_openapi_by_route(client: TestClient) -> None:
    """/docs, /redoc, /openapi.json and the assets are counted under their own route
    templates, not under the label of unmatched paths."""
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui.css"):
        assert client.get(path).status_code == 200
    client.get("/no/such/path")
    text = client.get("/metrics").text
    for route in ("/docs", "/redoc", "/openapi.json", "/docs/assets/{name}"):
        line = f'digits_http_requests_total{{method="GET",route="{route}",status="200"}} 1.0'
        assert line in text
    assert 'route="<unmatched>",status="200"' not in text
    assert 'digits_http_requests_total{method="GET",route="<unmatched>",status="404"} 1.0' in text
