"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) from the service's own files, so they work
without internet access (FastAPI's defaults load both from a CDN), and the tag descriptions
of the OpenAPI document. The vendored files, their versions and licences: ``service/static``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from service.http.browser import ASSET_HEADERS, page_headers
from service.http.policy import OPEN, needs

STATIC = Path(__file__).resolve().parents[2] / "static"
ASSETS_PATH = "/docs/assets"

#: The files ``/docs/assets/{name}`` serves: name -> (folder under ``STATIC``, media type).
ASSETS: dict[str, tuple[str, str]] = {
    "swagger-ui-bundle.js": ("swagger-ui", "text/javascript"),
    "swagger-ui.css": ("swagger-ui", "text/css"),
    "favicon-32x32.png": ("swagger-ui", "image/png"),
    "redoc.standalone.js": ("redoc", "text/javascript"),
}

#: Tag descriptions, in the order Swagger UI and ReDoc show the groups.
OPENAPI_TAGS: list[dict[str, Any]] = [
    {
        "name": "predict",
        "description": "Classify handwritten digits: 8x8 images as 64 raw pixel values 0..16, "
        "row by row (scikit-learn's `load_digits`), one in `pixels` or many in `instances`.",
    },
    {
        "name": "models",
        "description": "The models and versions being served, with their manifests (test "
        "accuracy, recipe, checksum), their aliases and which version answers by default.",
    },
    {
        "name": "rollout",
        "description": "Safe rollout of new versions: aliases (`production`, `staging`, ...) "
        "moved by an admin, optionally through the promotion gate; every move recorded and "
        "undone by a rollback; canary weights and a shadow version for unpinned traffic.",
    },
    {
        "name": "train",
        "description": "Training jobs: start one in the background, follow its loss curve "
        "live (JSON, server-sent events, plots), list and cancel jobs. A job that succeeds "
        "publishes a new model version, served without a restart.",
    },
    {
        "name": "health",
        "description": "Probes for load balancers and orchestrators: the process is up, and "
        "the models are loaded and warmed.",
    },
    {"name": "metrics", "description": "Prometheus metrics of requests, predictions and jobs."},
    {
        "name": "v2",
        "description": "The Open Inference Protocol (KServe v2, Triton's HTTP API) with "
        "Triton's binary tensor data extension: `tritonclient` and KServe clients work "
        "unchanged. Input `pixels` FP32 `[N, 64]`; outputs `probabilities` and `label`. "
        'Errors are `{"error": "..."}` (docs/v2.md).',
    },
    {
        "name": "v2 repository",
        "description": "Triton's model repository extension: list the models, unload one from "
        "this process, load it again (admin key).",
    },
]

router = APIRouter(include_in_schema=False)


@router.get("/docs")
@needs(OPEN)
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI on this service's OpenAPI document, from local files."""
    return _page(
        request,
        get_swagger_ui_html,
        "Swagger UI",
        {
            "swagger_js_url": "swagger-ui-bundle.js",
            "swagger_css_url": "swagger-ui.css",
            "swagger_favicon_url": "favicon-32x32.png",
        },
        oauth2_redirect_url=None,
    )


@router.get("/redoc")
@needs(OPEN)
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc on this service's OpenAPI document, from local files, without web fonts."""
    return _page(
        request,
        get_redoc_html,
        "ReDoc",
        {"redoc_js_url": "redoc.standalone.js", "redoc_favicon_url": "favicon-32x32.png"},
        with_google_fonts=False,
    )


def _page(
    request: Request,
    render: Callable[..., HTMLResponse],
    title: str,
    assets: dict[str, str],
    **options: Any,
) -> HTMLResponse:
    """A docs page rendered by FastAPI's ``render`` with this service's OpenAPI document and
    the vendored ``assets`` (file names under ``ASSETS_PATH``), behind the root path."""
    root = request.scope.get("root_path", "")
    return _secured(
        render(
            openapi_url=f"{root}{request.app.openapi_url}",
            title=f"{request.app.title} - {title}",
            **{key: f"{root}{ASSETS_PATH}/{name}" for key, name in assets.items()},
            **options,
        )
    )


def _secured(page: HTMLResponse) -> HTMLResponse:
    """The security headers of a docs page: its inline start-up script admitted by hash,
    and the inline styles Swagger UI and ReDoc set from their scripts."""
    page.headers.update(page_headers(bytes(page.body), inline_styles=True))
    return page


@router.get(ASSETS_PATH + "/{name}")
@needs(OPEN)
async def asset(name: str) -> FileResponse:
    """One of the vendored files in ``ASSETS`` (a day's browser cache: they change by release)."""
    if name not in ASSETS:
        raise HTTPException(status_code=404, detail=f"no documentation asset {name!r}")
    folder, media_type = ASSETS[name]
    return FileResponse(
        STATIC / folder / name,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=86400", **ASSET_HEADERS},
    )
