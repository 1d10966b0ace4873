"""The web console: ``/`` (one HTML page: Draw, Models, Train) and its files under
``/console/assets/``, plain HTML, JavaScript and CSS from ``service/static/console`` (no build
step, nothing from a CDN). The page holds no data: it calls the API with the key typed into
it, so both routes are open. See docs/console.md.

Also ``GET /models/{name}/versions/{version}/curves.json``: the loss and accuracy curves a
version was exported with, which the console's Models page draws.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from service.errors import CurvesNotFound, ModelUnloaded, VersionNotFound
from service.http.browser import ASSET_HEADERS, page_headers
from service.http.deps import RegistryDep
from service.http.numbers import PlainInt
from service.http.policy import OPEN, READ, needs
from service.inference.registry import ModelRegistry
from training.curves import CURVES_JSON

CONSOLE = Path(__file__).resolve().parents[2] / "static" / "console"
ASSETS_PATH = "/console/assets"

#: The files ``/console/assets/{name}`` serves: name -> media type.
ASSETS: dict[str, str] = {
    "chart.js": "text/javascript",
    "console.css": "text/css",
    "console.js": "text/javascript",
    "models.js": "text/javascript",
    "reduce.js": "text/javascript",
    "train.js": "text/javascript",
    "test-digits.json": "application/json",
}

#: The page has no inline script or style: its Content-Security-Policy admits only its files.
_PAGE_HEADERS = {"Cache-Control": "no-cache", **page_headers()}
_ASSET_HEADERS = {"Cache-Control": "no-cache", **ASSET_HEADERS}

router = APIRouter(include_in_schema=False)
curves_router = APIRouter(tags=["models"])


@router.get("/")
@needs(OPEN)
async def console() -> FileResponse:
    """The console page (revalidated on each load, so a new release shows at once)."""
    return FileResponse(CONSOLE / "index.html", media_type="text/html", headers=_PAGE_HEADERS)


@router.get(ASSETS_PATH + "/{name}")
@needs(OPEN)
async def asset(name: str) -> FileResponse:
    """One of the console's files in ``ASSETS`` (revalidated by ETag on each load)."""
    if name not in ASSETS:
        raise HTTPException(status_code=404, detail=f"no console asset {name!r}")
    return FileResponse(CONSOLE / name, media_type=ASSETS[name], headers=_ASSET_HEADERS)


@curves_router.get(
    "/models/{name}/versions/{version}/curves.json",
    summary="The loss and accuracy curves of a model version",
    responses={404: {"description": "no such model or version, or it has no curves file"}},
)
@needs(READ)
async def version_curves(name: str, version: PlainInt, registry: RegistryDep) -> FileResponse:
    """``{"loss": [per iteration], "accuracy": [{"iteration", "train", "test"}, ...]}``, as
    written at export (``curves.json`` beside the manifest)."""
    path = _folder(registry, name, version) / CURVES_JSON
    if not path.is_file():
        raise CurvesNotFound(f"{name} version {version} was exported without {CURVES_JSON}")
    return FileResponse(path, media_type="application/json")


def _folder(registry: ModelRegistry, name: str, version: int) -> Path:
    """The folder of ``name`` ``version``: its curves are files, so an unloaded model's are
    served too (from the disk, not from what this process has loaded)."""
    try:
        return registry.get(name, version).folder
    except ModelUnloaded:
        on_disk = {
            a.key[1]: a.folder for a in registry.repository.scan().artifacts if a.key[0] == name
        }
        if version in on_disk:
            return on_disk[version]
        raise VersionNotFound(
            f"model {name!r} has no version {version}",
            expected=f"one of: {', '.join(str(v) for v in sorted(on_disk)) or '(none)'}",
        ) from None
