"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.http.deps import StartedRegistryDep
from service.http.policy import OPEN, needs

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", summary="Liveness: the process is up")
@needs(OPEN)
async def live() -> dict[str, str]:
    """The process is up (always 200)."""
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness: which models can answer, and why not",
    responses={503: {"description": "starting, or no model can answer; the body says why"}},
)
@needs(OPEN)
async def ready(registry: StartedRegistryDep) -> JSONResponse:
    """200 while at least one model can answer (``degraded`` when some cannot), 503 while
    starting or when none can; each model's state and every refused folder, with why.
    Recomputed at each call, as models come and go."""
    if registry is None:
        return JSONResponse({"status": "not_ready", "reason": "starting"}, status_code=503)
    states = [registry.state(name) for name in registry.names()]
    models: dict[str, Any] = {
        s.name: {
            "ready": s.ready,
            "default_version": s.default_version,
            "versions": [m.version for m in registry.versions(s.name)],
            "reason": s.reason,
        }
        for s in states
    }
    servable = sum(s.ready for s in states)
    status = "ready" if servable == len(states) else "degraded" if servable else "not_ready"
    body: dict[str, Any] = {"status": status, "models": models, "failures": registry.failures}
    if not states:
        body["reason"] = registry.problem or "no model on disk"
    return JSONResponse(body, status_code=200 if servable else 503)
