"""The console's routes: the page and its files (open), and a version's curves (READ)."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from service.http.routes.console import ASSETS
from training.curves import CURVES_JSON


def test_the_page_links_only_its_own_assets(client: TestClient) -> None:
    """``/`` is the console's HTML, and every script and stylesheet it names is served here."""
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    linked = re.findall(r'(?:src|href)="console/assets/([^"]+)"', page.text)
    assert set(linked) == {
        "console.css",
        "reduce.js",
        "chart.js",
        "models.js",
        "train.js",
        "console.js",
    }
    assert "http" not in "".join(re.findall(r'(?:src|href)="([^"]+)"', page.text))
    for name in ASSETS:
        assert client.get(f"/console/assets/{name}").status_code == 200, name


def test_an_unknown_asset_is_a_404(client: TestClient) -> None:
    """Only the files in ``ASSETS`` are served: no path escapes the folder."""
    for name in ("index.html", "..%2Fconsole.py", "nope.js"):
        assert client.get(f"/console/assets/{name}").status_code == 404, name


def test_a_version_s_curves_are_its_exported_file(client: TestClient) -> None:
    """``/models/{name}/versions/{version}/curves.json`` is the version's ``curves.json``."""
    served = client.get("/models/cnn/versions/1/curves.json")
    assert served.status_code == 200
    folder = client.app.state.registry.get("cnn", 1).folder  # type: ignore[attr-defined]
    assert served.json() == json.loads((folder / CURVES_JSON).read_text())
    assert len(served.json()["loss"]) == served.json()["accuracy"][-1]["iteration"]


def test_curves_of_an_unknown_version_or_a_missing_file_are_404(client: TestClient) -> None:
    """An unknown version, and a version without its curves file, answer 404 saying which."""
    assert client.get("/models/cnn/versions/99/curves.json").json()["error"]["code"] == (
        "version_not_found"
    )
    folder = client.app.state.registry.get("fnn", 1).folder  # type: ignore[attr-defined]
    (folder / CURVES_JSON).unlink()
    missing = client.get("/models/fnn/versions/1/curves.json")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "curves_not_found"


def test_an_unloaded_model_s_curves_are_still_served(client: TestClient) -> None:
    """The curves are files on disk: unloading a model (``/v2`` repository) does not hide
    them (it answered 503 before)."""
    assert client.post("/v2/repository/models/fnn/unload").status_code == 200
    try:
        served = client.get("/models/fnn/versions/1/curves.json")
        assert served.status_code == 200
        assert served.json()["loss"]
        assert client.get("/models/fnn/versions/9/curves.json").status_code == 404
    finally:
        assert client.post("/v2/repository/models/fnn/load").status_code == 200
