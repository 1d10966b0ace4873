"""Triton's model repository extension: ``POST /v2/repository/index``, and ``.../load`` and
``.../unload`` of a model (admin key, see ``service/http/access.py``).

Unload drops every version of the model from this process's memory and keeps it out (its
infer answers 400, its ready 503, the folders watcher does not bring it back) until load reads
it from disk again (sha256 checked, warmed). This is per process: with ``--workers N`` or
several replicas, each process that should stop serving a model must be told; a restart
serves every model again.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from service.errors import InvalidInput, ModelNotReady
from service.http.deps import get_dataplane, get_registry
from service.http.policy import ADMIN, needs
from service.http.routes.predict import read_body
from service.http.routes.v2 import V2Route, json_response
from service.inference.registry import ModelRegistry

router = APIRouter(prefix="/v2/repository", tags=["v2 repository"], route_class=V2Route)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": '{"error": "..."}: the request is at fault; the message names it'},
    404: {"description": '{"error": "..."}: no such model on disk'},
}


#: Load and unload answer 200 with an empty body, as Triton does.
_NO_BODY: dict[str, Any] = {"description": "done; no body", "content": {}}


@router.post("/index", summary="Every model in the repository and its state", responses=_ERRORS)
@needs(ADMIN)
async def index(request: Request) -> Response:
    """Each version of each model: ``READY`` or ``UNAVAILABLE`` with the reason (an unloaded
    model is one entry); ``{"ready": true}`` lists only the ready ones."""
    ready_only = _flag(await _body(request), "ready")
    entries = _entries(get_registry(request))
    if ready_only:
        entries = [e for e in entries if e["state"] == "READY"]
    return json_response(entries)


@router.post(
    "/models/{name}/load",
    summary="Load (or reload) a model",
    response_class=Response,
    responses={200: _NO_BODY, **_ERRORS},
)
@needs(ADMIN)
async def load(request: Request) -> Response:
    """Load every version of the model from disk again (after an unload, or to reload it)."""
    body = await _body(request)
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict) or any(
        key == "config" or key.startswith("file:") for key in parameters
    ):
        raise InvalidInput(
            "load takes no 'config' or 'file:' parameters: models come from the models folders",
            expected="an empty body, or {} (publish versions with /train or python -m training)",
        )
    name: str = request.path_params["name"]
    dataplane = get_dataplane(request)
    state = await dataplane.load(name)
    if not state.ready:  # no version of it can be served (checked before any other change)
        raise ModelNotReady(f"model {name!r} was loaded but cannot answer: {state.reason}")
    return Response(status_code=200)


@router.post(
    "/models/{name}/unload",
    summary="Unload a model",
    response_class=Response,
    responses={200: _NO_BODY, **_ERRORS},
)
@needs(ADMIN)
async def unload(request: Request) -> Response:
    """Stop serving the model in this process until it is loaded again."""
    await _body(request)
    await get_dataplane(request).unload(request.path_params["name"])
    return Response(status_code=200)


def _entries(registry: ModelRegistry) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for name in registry.names():
        state = registry.state(name)
        if state.unloaded:
            entries.append({"name": name, "state": "UNAVAILABLE", "reason": "unloaded"})
            continue
        rows = {m.version: ("READY", "") for m in registry.versions(name)}
        rows |= {v: ("UNAVAILABLE", why) for v, why in state.refused.items()}
        for version, (status, reason) in sorted(rows.items()):
            entries.append(
                {"name": name, "version": str(version), "state": status, "reason": reason}
            )
    return entries


async def _body(request: Request) -> dict[str, Any]:
    """The JSON object of a repository request; an empty body is ``{}``."""
    raw = await read_body(request)
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidInput(f"the request body must be a JSON object, got {type(body).__name__}")
    return body


def _flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise InvalidInput(f"{key!r} must be true or false, got {orjson.dumps(value).decode()}")
    return value
