"""Predict: ``POST /predict`` (the default model) and ``POST /models/{name}/predict``.

The body is decoded with orjson + numpy (``schemas.decode_rows``), not pydantic, because this
is the hot path; ``PredictRequest`` still documents it in OpenAPI, with working examples.
For the same reason ``_PredictRoute`` skips FastAPI's parameter solving at request time
(~15-20 us a request): the endpoints below declare the parameters for OpenAPI, and the
handlers that actually run read the path, the query and ``app.state.dataplane`` themselves,
raising the same ``RequestValidationError`` FastAPI would for a bad ``version``.

``PredictFastPath`` (pure ASGI, the innermost middleware, so request metrics and the body
limit still wrap it) serves ``POST`` on these two paths without going through Starlette's
exception middleware, FastAPI's exit-stack middleware and the router's match over every route
(~30 us a request together, measured with ``bench/asgi_micro.py``). It matches the routes' own
``path_regex``, sets the scope keys the router would (``route``, ``endpoint``,
``path_params``), runs the same lean handlers, and renders an exception with the app's own
handler for it, as Starlette's ``ExceptionMiddleware`` does (the catch-all 500 stays with the
outer ``ServerErrorMiddleware``), so every answer (status, envelope, message) is the routes'.
Anything else falls through to the app: other paths and methods, a ``root_path``, and
requests FastAPI's native OpenTelemetry instrumentation is tracing (``fastapi.telemetry`` in
the scope), whose spans take the route from the router.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from service.dataplane import DataPlane, InferenceResult
from service.schemas import PredictResponse, decode_rows, predict_openapi


async def _handle_default(request: Request) -> Response:
    dataplane: DataPlane = request.app.state.dataplane
    return await _predict(request, dataplane, dataplane.default_model, None)


async def _handle_named(request: Request) -> Response:
    dataplane: DataPlane = request.app.state.dataplane
    version = _version(request.query_params.get("version"))
    return await _predict(request, dataplane, request.path_params["name"], version)


_HANDLERS: dict[str, Callable[[Request], Coroutine[Any, Any, Response]]] = {
    "predict_default": _handle_default,
    "predict": _handle_named,
}


def _version(raw: str | None) -> int | None:
    """``VersionQuery`` by hand, with pydantic's error types and messages."""
    if raw is None:
        return None
    loc = ("query", "version")
    try:
        # ASCII digits only: int() would also take "1_0" (as 10) and other scripts' digits.
        if not (raw.isascii() and raw.strip().lstrip("+-").isdigit()):
            raise ValueError(raw)
        version = int(raw)
    except ValueError:
        message = "Input should be a valid integer, unable to parse string as an integer"
        raise RequestValidationError(
            [{"type": "int_parsing", "loc": loc, "msg": message, "input": raw}]
        ) from None
    if version < 1:
        message = "Input should be greater than or equal to 1"
        raise RequestValidationError(
            [
                {
                    "type": "greater_than_equal",
                    "loc": loc,
                    "msg": message,
                    "input": raw,
                    "ctx": {"ge": 1},
                }
            ]
        )
    return version


class _PredictRoute(APIRoute):
    """An ``APIRoute`` whose request handler is the lean one of its endpoint (see above)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return _HANDLERS.get(self.name) or super().get_route_handler()


router = APIRouter(tags=["predict"], route_class=_PredictRoute)

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown model or version; the error lists those that exist"},
    413: {"description": "body over DIGITS_MAX_BODY_BYTES or more rows than DIGITS_MAX_ROWS"},
    422: {"description": "not 64 finite numbers in 0..16 per row; the error names the row"},
}
VersionQuery = Annotated[
    int | None, Query(ge=1, description="model version (default: the model's default version)")
]


@router.post(
    "/predict",
    summary="Classify digits with the default model",
    response_model=PredictResponse,
    responses=_ERRORS,
    openapi_extra=predict_openapi(),
)
async def predict_default(request: Request) -> Response:
    """Classify digits with the default model (DIGITS_DEFAULT_MODEL)."""
    dataplane: DataPlane = request.app.state.dataplane
    return await _predict(request, dataplane, dataplane.default_model, None)


@router.post(
    "/models/{name}/predict",
    summary="Classify digits with a chosen model and version",
    response_model=PredictResponse,
    responses=_ERRORS,
    openapi_extra=predict_openapi(),
)
async def predict(request: Request, name: str, version: VersionQuery = None) -> Response:
    """Classify digits with model ``name`` (its default version unless ``version`` is given)."""
    dataplane: DataPlane = request.app.state.dataplane
    return await _predict(request, dataplane, name, version)


async def _predict(
    request: Request, dataplane: DataPlane, name: str, version: int | None
) -> Response:
    rows = decode_rows(await _read_body(request), dataplane.max_rows)  # (N, 64) float32
    result = await dataplane.infer(name, version, rows)
    return Response(_encode(result), media_type="application/json")


async def _read_body(request: Request) -> bytes:
    """``await request.body()`` without its async generator (a few us a request)."""
    chunks: list[bytes] = []
    while True:
        message = await request.receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect


def _encode(result: InferenceResult) -> bytes:
    probabilities = result.probabilities  # (N, 10) float32, C-contiguous rows
    predictions = [
        {"label": label, "probabilities": row}
        for label, row in zip(result.labels.tolist(), probabilities, strict=True)
    ]
    body = {
        "model": result.model,
        "version": str(result.version),
        "device": result.device,
        "predictions": predictions,
    }
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


class PredictFastPath:
    """Serve ``POST`` to the predict routes of ``routes`` straight from the middleware stack."""

    def __init__(self, app: ASGIApp, routes: list[Any] | None = None) -> None:
        self.app = app
        self.routes = [
            route
            for route in (router.routes if routes is None else routes)
            if isinstance(route, APIRoute) and route.name in _HANDLERS
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope.get("root_path")
            or "fastapi.telemetry" in scope
        ):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        for route in self.routes:
            match = route.path_regex.match(path)
            if match is not None:
                break
        else:
            await self.app(scope, receive, send)
            return
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {
            key: route.param_convertors[key].convert(value)
            for key, value in match.groupdict().items()
        }
        request = Request(scope, receive, send)
        try:
            response = await _HANDLERS[route.name](request)
        except Exception as exc:
            handler = _exception_handler(scope["app"], exc)
            if handler is None:  # ServerErrorMiddleware answers it (the catch-all 500)
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)


def _exception_handler(app: Any, exc: Exception) -> Callable[..., Any] | None:
    """The app's handler for ``exc`` by its class hierarchy, as Starlette's
    ``ExceptionMiddleware`` looks it up (the ``Exception`` one belongs to the outer layer)."""
    handlers = app.exception_handlers
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            handler: Callable[..., Any] = handlers[cls]
            return handler
    return None
