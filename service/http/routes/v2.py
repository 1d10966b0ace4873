"""Open Inference Protocol (KServe v2) REST: health, server and model metadata, inference
(with Triton's binary tensor data extension). The repository extension: ``v2_repository``.

Every route is a ``V2Route``: declared once (OpenAPI) and run as predict's ``RawRoute`` runs
(the raw ``Request``, no parameter solving), answering its errors as the protocol says:
``{"error": "<message>"}`` (``v2_error``). ``POST .../infer`` is also served by ``PredictFront``
(service/http/app.py), ahead of the router, like ``/predict``. Inference goes through the same
``DataPlane.infer`` and micro-batchers as ``/predict``: a ``/v2`` request and a ``/predict``
request for the same version share forwards. Without a version in the path, the model's
default version answers, picked by the registry as for ``/predict``.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.routing import BaseRoute
from starlette.types import Scope

from service.errors import (
    InvalidInput,
    ModelNotReady,
    ModelUnloaded,
    ServiceError,
    UnsupportedMediaType,
    VersionNotFound,
)
from service.http.deps import get_dataplane, get_registry, get_started_registry
from service.http.numbers import parse_int, shown
from service.http.policy import OPEN, READ, needs
from service.http.request_log import ANSWERED_BY, with_request_id
from service.http.routes.predict import Endpoint, RawRoute, read_body
from service.http.v2_codec import (
    MODEL_INPUTS,
    MODEL_OUTPUTS,
    OUTLIER_OUTPUTS,
    decode_infer,
    encode_infer,
)
from service.inference.registry import ModelRegistry

EXTENSIONS = ["binary_tensor_data", "model_repository"]
HEADER_LENGTH = b"inference-header-content-length"
#: The body media types the infer routes take: JSON, or binary tensor data.
INFER_TYPES = ("application/json", "application/octet-stream")
#: The status of a readiness answer that is false: the protocol's health APIs say true with
#: 200 and false with a 4xx, and Triton answers 400 (``tritonclient`` reads any non-200 as
#: false; a Kubernetes probe fails on it as on a 5xx).
NOT_READY = 400


class V2Route(RawRoute):
    """A ``RawRoute`` whose errors are answered in the protocol's shape (``v2_error``); its
    path parameters (``{name}``, ``{version}``) are documented as strings."""

    def __init__(self, path: str, endpoint: Endpoint, **kwargs: Any) -> None:
        names = re.findall(r"{(\w+)}", path)
        if names:
            kwargs["openapi_extra"] = {
                "parameters": [
                    {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                    for n in names
                ],
                **(kwargs.get("openapi_extra") or {}),
            }

        @functools.wraps(endpoint)
        async def answer(request: Request) -> Response:
            try:
                return await endpoint(request)
            except ServiceError as error:
                return v2_error(error, request.scope)

        super().__init__(path, answer, **kwargs)


def v2_error(error: ServiceError, scope: Scope) -> Response:
    """``{"error": "<message>", "request_id": "<X-Request-Id>"}``: 400 for a request at fault
    (bad input or media type, a model unloaded on request, as Triton answers), else the
    error's own status (404 unknown model or version, 413 too many rows, 503 a version that
    cannot be loaded)."""
    client_fault = isinstance(error, InvalidInput | UnsupportedMediaType | ModelUnloaded)
    message = error.message if error.expected is None else f"{error.message}; {error.expected}"
    body = with_request_id({"error": message}, scope)
    return json_response(body, 400 if client_fault else error.status_code, error.headers)


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """``body`` as JSON (orjson)."""
    return Response(orjson.dumps(body), status_code, headers, media_type="application/json")


router = APIRouter(prefix="/v2", tags=["v2"], route_class=V2Route)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": '{"error": "..."}: the request is at fault; the message names it'},
    404: {"description": '{"error": "..."}: unknown model or version'},
}
_READY_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    NOT_READY: {
        "description": '{"name", "ready": false}: unloaded, or not servable (or '
        '{"error": "..."} for a request at fault)'
    },
}
_INFER_EXAMPLE = {
    "id": "42",
    "inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": [0] * 64}],
    "outputs": [{"name": "label"}, {"name": "probabilities"}],
}
_INFER_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object"},
                "examples": {"one row": {"summary": "one image", "value": _INFER_EXAMPLE}},
            },
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": "the JSON request, then each binary tensor "
                "(Inference-Header-Content-Length gives the JSON's length)",
            },
        },
    }
}


@router.get("", summary="Server metadata: name, version, extensions")
@needs(READ)
async def server_metadata(request: Request) -> Response:
    """The server's name, version and protocol extensions."""
    app = request.app
    return json_response({"name": app.title, "version": app.version, "extensions": EXTENSIONS})


@router.get("/health/live", summary="Liveness: the process is up")
@needs(OPEN)
async def server_live(request: Request) -> Response:
    """200 while the process is up."""
    return json_response({"live": True})


@router.get(
    "/health/ready",
    summary="Server ready: every model is ready",
    responses={
        NOT_READY: {
            "description": '{"ready": false}: starting, or a model (not unloaded) cannot answer'
        }
    },
)
@needs(OPEN)
async def server_ready(request: Request) -> Response:
    """200 once started and every model not unloaded on request can answer (at least one);
    else 400 (``NOT_READY``). ``/health/ready`` says which model is not, and why."""
    registry = get_started_registry(request)
    states = [] if registry is None else [registry.state(n) for n in registry.names()]
    serving = [s for s in states if not s.unloaded]
    ready = bool(serving) and all(s.ready for s in serving)
    return json_response({"ready": ready}, 200 if ready else NOT_READY)


@router.get(
    "/models/{name}", summary="Describe a model: versions, platform, tensors", responses=_ERRORS
)
@router.get(
    "/models/{name}/versions/{version}", summary="Model version metadata", responses=_ERRORS
)
@needs(READ)
async def model_metadata(request: Request) -> Response:
    """The model's versions, platform and tensors (the default version's unless one is given)."""
    registry = get_registry(request)
    name, version = _target(request, registry)
    model = registry.get(name, version)  # unknown, unloaded or not servable: protocol error
    threshold = model.outlier_threshold
    body: dict[str, Any] = {
        "name": name,
        "versions": [str(m.version) for m in registry.versions(name)],
        "platform": model.runtime.platform,
        "inputs": MODEL_INPUTS,
        # a version exported without an outlier score has no outlier outputs
        "outputs": [
            o for o in MODEL_OUTPUTS if threshold is not None or o["name"] not in OUTLIER_OUTPUTS
        ],
    }
    if threshold is not None:  # outlier = outlier_score > this (docs/v2.md)
        body["parameters"] = {"outlier_threshold": threshold}
    return json_response(body)


@router.get(
    "/models/{name}/ready",
    summary="Readiness of a model",
    responses=_READY_RESPONSES,
)
@router.get(
    "/models/{name}/versions/{version}/ready",
    summary="Model version ready",
    responses=_READY_RESPONSES,
)
@needs(OPEN)
async def model_ready(request: Request) -> Response:
    """200 with ``ready: true`` when the model (version) can answer, else 400 (``NOT_READY``)."""
    registry = get_registry(request)
    name, version = _target(request, registry)
    try:
        registry.get(name, version)
    except ModelNotReady:
        return json_response({"name": name, "ready": False}, NOT_READY)
    return json_response({"name": name, "ready": True})


@router.post(
    "/models/{name}/infer",
    summary="Inference (JSON or binary tensors)",
    responses=_ERRORS,
    openapi_extra=_INFER_OPENAPI,
)
@router.post(
    "/models/{name}/versions/{version}/infer",
    summary="Inference with a model version",
    responses=_ERRORS,
    openapi_extra=_INFER_OPENAPI,
)
@needs(READ, accepts=INFER_TYPES)
async def infer(request: Request) -> Response:
    """Classify the rows of input ``pixels`` (FP32 ``[N, 64]``, raw pixels 0..16); outputs
    ``probabilities`` and ``label``, as JSON or binary data as the request asks."""
    dataplane = get_dataplane(request)
    name, version = _target(request, dataplane.registry)
    dataplane.registry.get(name, version)  # an unknown model is a 404 whatever the body
    header_length = _header_length(request)
    decoded = decode_infer(await read_body(request), header_length, dataplane.max_rows)
    result = await dataplane.infer(name, version, decoded.rows)
    request.scope[ANSWERED_BY] = (result.model, result.version)
    body, json_length = encode_infer(result, decoded)
    if json_length is None:
        return Response(body, media_type="application/json")
    headers = {"Inference-Header-Content-Length": str(json_length)}
    return Response(body, headers=headers, media_type="application/octet-stream")


def infer_routes() -> list[BaseRoute]:
    """The two ``POST .../infer`` routes, for ``PredictFront``: without a version first."""
    paths = {getattr(r, "path", ""): r for r in router.routes}
    return [paths[p] for p in sorted(paths, key=len) if p.endswith("/infer")]


def _target(request: Request, registry: ModelRegistry) -> tuple[str, int | None]:
    """The model name and version of the path (``None``: the default version)."""
    name: str = request.path_params["name"]
    raw: str | None = request.path_params.get("version")
    if raw is None:
        return name, None
    try:
        return name, parse_int(raw, "version", minimum=1)
    except InvalidInput:  # as Triton, a version that names none is unknown: 404
        known = ", ".join(str(m.version) for m in registry.versions(name)) or "(none)"
        raise VersionNotFound(
            f"model {name!r} has no version {shown(raw)}", expected=f"one of: {known}"
        ) from None


def _header_length(request: Request) -> int | None:
    """``Inference-Header-Content-Length`` (None when absent). The media type is checked where
    every request's is (``service.http.access``: JSON or ``application/octet-stream``)."""
    length = None
    for key, value in request.scope["headers"]:
        if key == HEADER_LENGTH:
            length = parse_int(value, "Inference-Header-Content-Length", minimum=0)
    return length
