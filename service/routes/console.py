"""The web console: ``/`` (one HTML page: Draw, Models, Train) and its files under
``/console/assets/``, plain HTML, JavaScript and CSS from ``service/static/console`` (no build
step, nothing from a CDN). The page holds no data: it calls the API with the key typed into
it, so both routes are open. See docs/console.md.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

CONSOLE = Path(__file__).resolve().parents[1] / "static" / "console"
ASSETS_PATH = "/console/assets"

#: The files ``/console/assets/{name}`` serves: name -> media type.
ASSETS: dict[str, str] = {
    "console.css": "text/css",
    "console.js": "text/javascript",
    "reduce.js": "text/javascript",
    "test-digits.json": "application/json",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def console() -> FileResponse:
    """The console page (revalidated on each load, so a new release shows at once)."""
    return FileResponse(
        CONSOLE / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"}
    )


@router.get(ASSETS_PATH + "/{name}")
async def asset(name: str) -> FileResponse:
    """One of the console's files in ``ASSETS`` (revalidated by ETag on each load)."""
    if name not in ASSETS:
        raise HTTPException(status_code=404, detail=f"no console asset {name!r}")
    return FileResponse(
        CONSOLE / name, media_type=ASSETS[name], headers={"Cache-Control": "no-cache"}
    )
