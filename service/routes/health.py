"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", summary="Liveness: the process is up")
async def live() -> dict[str, str]:
    """The process is up (always 200)."""
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness: models loaded and warmed",
    responses={503: {"description": "models not loaded and warmed yet"}},
)
async def ready(request: Request) -> JSONResponse:
    """200 once every model on disk at start-up is loaded and warmed; 503 before."""
    state = request.app.state
    is_ready = bool(getattr(state, "ready", False))
    body: dict[str, Any] = {"status": "ready" if is_ready else "not_ready"}
    registry = getattr(state, "registry", None)
    if registry is not None:
        body["models"] = {
            name: [m.version for m in registry.versions(name)] for name in registry.names()
        }
        body["failures"] = registry.failures
    return JSONResponse(body, status_code=200 if is_ready else 503)
