"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.http.access import Keys, presented_key, unauthenticated_warning
from service.http.deps import StartedRegistryDep
from service.http.policy import OPEN, needs
from service.inference.model_state import ModelState

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
async def ready(registry: StartedRegistryDep, request: Request) -> JSONResponse:
    """200 while at least one model can answer (``degraded`` when some cannot, a model
    folder is refused or the version store cannot be read, with the reason), 503 while
    starting or when none can; each model's state and every refused folder, with why.
    Recomputed at each call, as models come and go. Where a read key is set, a request
    without it sees whether each model is ready and why in general terms, not the folders,
    paths or checksums (``refused_folders`` counts them)."""
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
    failures, store = registry.failures, registry.store_problem
    whole = 0 < servable == len(states) and not failures and store is None
    status = "ready" if whole else "degraded" if servable else "not_ready"
    body: dict[str, Any] = {"status": status, "models": models, "failures": failures}
    stale = [] if store is None else [f"version store: {store}"]
    if store is not None:
        body["version_store"] = store
    if not states:
        body["reason"] = "; ".join([registry.problem or "no model on disk", *stale])
    elif status == "degraded":
        unready = [f"{s.name}: {s.reason}" for s in states if not s.ready]
        refused = [f"refused {p}: {why}" for p, why in failures.items()]
        body["reason"] = "; ".join(unready + refused + stale)
    keys: Keys = request.app.state.keys
    if not keys.reads(presented_key(request.scope["headers"])):
        body = _public(body, states)
    warning = unauthenticated_warning(request.app.state.settings)
    if warning is not None:
        body["warning"] = warning
    return JSONResponse(body, status_code=200 if servable else 503)


def _public(body: dict[str, Any], states: list[ModelState]) -> dict[str, Any]:
    """``ready``'s body for anyone: ready or not and why, without paths or checksums."""
    models = {s.name: {"ready": s.ready, "reason": _public_reason(s)} for s in states}
    public = {"status": body["status"], "models": models, "refused_folders": len(body["failures"])}
    whole = all(s.ready for s in states) and not body["failures"]
    if "reason" in body:
        public["reason"] = (
            "no model can be served"
            if body["status"] != "degraded"
            else "the version store cannot be read"
            if whole
            else "some models or model folders cannot be served"
        )
    if "version_store" in body:
        public["version_store"] = "cannot be read: versions published there are not seen yet"
    public["detail"] = "versions, reasons and refused folders with the read key"
    return public


def _public_reason(state: ModelState) -> str | None:
    if state.ready:
        return None
    if state.unloaded:
        return "unloaded on request"
    return f"its production version {state.default_version} cannot be served"
