"""/docs and /redoc from local files, the OpenAPI text people read, and their metrics labels.

The pages themselves are driven in a real browser in ``test_docs_page.py``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.http.routes.docs import ASSETS, STATIC

ROOT = Path(__file__).resolve().parents[2]
IGNORED = shutil.ignore_patterns("__pycache__", "*.egg-info")


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


def test_the_wheel_ships_the_docs_assets_and_their_licences(tmp_path: Path) -> None:
    """A wheel of the project (what ``pip install`` puts on a server) holds every file /docs
    and /redoc serve, byte for byte, and each vendored package's licence beside them."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("service", "training"):
        shutil.copytree(ROOT / package, source / package, ignore=IGNORED)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    static = STATIC.relative_to(ROOT).as_posix()
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name: archive.read(name) for name in archive.namelist()}
    for name, (folder, _media_type) in ASSETS.items():
        assert shipped.get(f"{static}/{folder}/{name}") == (STATIC / folder / name).read_bytes()
        assert shipped.get(f"{static}/{folder}/LICENSE"), f"no licence for {folder}"


def test_every_operation_has_a_written_summary(client: TestClient) -> None:
    """Each operation has a summary written for people, not the one FastAPI generates from
    the function name ("Submit", "Curve Json"), and every tag it uses is described."""
    schema = client.get("/openapi.json").json()
    tags = {tag["name"]: tag.get("description", "") for tag in schema["tags"]}
    operations = [
        (f"{method.upper()} {path}", operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]
    assert len(operations) >= 14
    for where, operation in operations:
        summary = operation.get("summary", "")
        # FastAPI's generated summary is the function name, which starts the operationId.
        generated = operation["operationId"].startswith(summary.lower().replace(" ", "_") + "_")
        assert summary, where
        assert not generated, f"{where}: {summary!r} is generated from the function name"
        assert operation["tags"], where
        assert all(tags.get(tag) for tag in operation["tags"]), where


def test_every_request_body_has_an_example(client: TestClient) -> None:
    """Every operation that takes a JSON body shows an example of it in the OpenAPI document;
    the others (image uploads) take files, which Swagger UI offers to choose."""
    schema = client.get("/openapi.json").json()
    operations = [
        (path, op["requestBody"]["content"])
        for path, ops in schema["paths"].items()
        for op in ops.values()
        if "requestBody" in op
    ]
    bodies = [
        (path, content["application/json"])
        for path, content in operations
        if "application/json" in content
    ]
    for path, content in operations:
        if "application/json" not in content:
            assert {"image/png", "multipart/form-data"} <= set(content), path
    assert {path for path, _ in bodies} >= {"/predict", "/train"}
    components = schema["components"]["schemas"]
    for path, media in bodies:
        ref = media["schema"].get("$ref", "").rsplit("/", 1)[-1]
        body_schema = components.get(ref, media["schema"])
        assert media.get("examples") or body_schema.get("examples"), path


def test_train_example_is_accepted_as_a_quick_job(client: TestClient) -> None:
    """The example Swagger UI sends on POST /train is accepted (202) and asks for a short
    fit, so "Try it out" starts a job that ends in seconds."""
    schema = client.get("/openapi.json").json()
    example = schema["components"]["schemas"]["JobSpec"]["examples"][0]
    assert example["hyperparameters"]["iterations"] <= 200
    response = client.post("/train", json=example)
    assert response.status_code == 202, response.text
    client.delete(f"/train/{response.json()['id']}")


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
