"""Predict: ``POST /predict`` (the default model) and ``POST /models/{name}/predict``.

This is the hot path. Each endpoint is declared once, documented once (``predict_openapi``:
body schema, examples, ``version``) and is what runs; it takes the raw ``Request`` and returns
a ``Response``: the body is decoded by ``decode.decode_rows`` (orjson + numpy, much faster
than pydantic), and ``RawRoute`` runs it as a plain ASGI app, without FastAPI's
parameter solving and per-request exit stacks.

``PredictFront`` (pure ASGI, innermost of the middleware, so metrics, access and body limits
wrap it as they wrap every route) dispatches ``POST`` on these routes to the same route
objects the router holds, through their public ``matches``/``handle``, before the router
and the exception middleware, whose cost on this path is measured in docs/service.md
(``bench/asgi_micro.py``). Errors are rendered by the same functions as the
app's handlers (``service/http/handlers.py``); anything else goes on to the catch-all 500.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import InvalidInput, ServiceError
from service.http.decode import decode_rows
from service.http.deps import get_dataplane
from service.http.handlers import error_response
from service.http.numbers import parse_int
from service.http.policy import READ, needs
from service.http.request_log import ANSWERED_BY
from service.http.schemas import PredictResponse, predict_openapi
from service.inference.dataplane import DataPlane, InferenceResult
from service.inference.explain import Explanation
from service.rollout.aliases import ALIAS_SCHEMA_PATTERN, check_alias_name

Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


class RawRoute(APIRoute):
    """An ``APIRoute`` (declared and documented as usual) whose endpoint takes the
    ``Request`` and returns a ``Response``, run as a plain ASGI app: no dependency solving,
    response validation or per-request exit stacks. Its errors propagate to the app's
    exception handlers like any route's."""

    def __init__(self, path: str, endpoint: Endpoint, **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            response = await endpoint(Request(scope, receive, send))
            await response(scope, receive, send)

        self.app = app


router = APIRouter(tags=["predict"], route_class=RawRoute)


class PredictFront:
    """Serve ``POST`` to the predict routes of ``routes`` in front of the router."""

    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        self.app = app
        self.routes = routes
        # Each route's path up to its first parameter: a path that does not start with it
        # cannot match, and ``str.startswith`` costs far less than ``route.matches``.
        self._prefixes = [getattr(r, "path", "").partition("{")[0] for r in routes]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"].removeprefix(scope.get("root_path", ""))
            for route, prefix in zip(self.routes, self._prefixes, strict=True):
                if not path.startswith(prefix):
                    continue
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child_scope)  # as the router does: route, path_params
                    await self._handle(route, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    @staticmethod
    async def _handle(route: BaseRoute, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await route.handle(scope, receive, send)
        except ClientDisconnect:
            return  # nobody to answer
        except (ServiceError, RequestValidationError) as error:
            await error_response(error, scope)(scope, receive, send)


ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown model, version or alias; the error lists those that exist"},
    413: {"description": "body over DIGITS_MAX_BODY_BYTES or more rows than DIGITS_MAX_ROWS"},
    415: {"description": "a Content-Type other than application/json"},
    422: {"description": "not 64 finite numbers in 0..16 per row; the error names the row"},
    503: {
        "description": "the model is unloaded or reloading (`model_unavailable`, with "
        "`Retry-After`), or its serving version could not be loaded; see /health/ready"
    },
}
VERSION_PARAM = {
    "name": "version",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1},
    "description": "model version (default: the canary split if one is set, else the "
    "version the `production` alias names)",
}
ALIAS_PARAM = {
    "name": "alias",
    "in": "query",
    "required": False,
    "schema": {
        "type": "string",
        "pattern": ALIAS_SCHEMA_PATTERN,
        "examples": ["production", "staging"],
    },
    "description": "answer with the version this alias names (not with `version`)",
}
REQUEST_ID_PARAM = {
    "name": "X-Request-Id",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "keeps a caller on the same side of a canary split; echoed in the "
    "answer's X-Request-Id (a new id when absent or not 1-128 of A-Za-z0-9._:-)",
}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
#: The query and header parameters that pick the version, on every predict route.
ROUTING_PARAMS = [VERSION_PARAM, ALIAS_PARAM, REQUEST_ID_PARAM]


@router.post(
    "/predict",
    summary="Classify digits with the default model",
    response_model=PredictResponse,
    responses=ERRORS,
    openapi_extra={**predict_openapi(), "parameters": ROUTING_PARAMS},
)
@needs(READ)
async def predict_default(request: Request) -> Response:
    """Classify digits with the default model (DIGITS_DEFAULT_MODEL)."""
    dataplane = get_dataplane(request)
    return await _predict(request, dataplane, dataplane.default_model)


@router.post(
    "/models/{name}/predict",
    summary="Classify digits with a chosen model and version",
    response_model=PredictResponse,
    responses=ERRORS,
    openapi_extra={**predict_openapi(), "parameters": [_NAME, *ROUTING_PARAMS]},
)
@needs(READ)
async def predict(request: Request) -> Response:
    """Classify digits with model ``name`` (its production version unless ``version`` or
    ``alias`` is given, or a canary split is set)."""
    name: str = request.path_params["name"]
    return await _predict(request, get_dataplane(request), name)


async def _predict(request: Request, dataplane: DataPlane, name: str) -> Response:
    version, alias = requested_target(request)
    rows = decode_rows(await read_body(request), dataplane.max_rows)  # (N, 64) float32
    result = await infer(request, dataplane, name, rows, version, alias)
    return Response(encode(result), media_type="application/json")


def requested_target(request: Request) -> tuple[int | None, str | None]:
    """The ``?version=`` and ``?alias=`` of a predict request (at most one of them)."""
    version, alias = None, None
    if request.scope["query_string"]:  # most requests carry none: skip the parsing
        version = parse_version(request.query_params.get("version"))
        alias = request.query_params.get("alias")
    if alias is not None:
        if version is not None:
            raise InvalidInput(
                "both ?version= and ?alias= were given", expected="one of them, or neither"
            )
        check_alias_name(alias)
    return version, alias


async def infer(
    request: Request,
    dataplane: DataPlane,
    name: str,
    rows: np.ndarray,
    version: int | None,
    alias: str | None,
) -> InferenceResult:
    """``rows`` through the data plane, kept on its side of a canary split by the request's
    ``X-Request-Id``; the version that answered is left in the scope for the access line."""
    request_id = request.headers.get("x-request-id")
    result = await dataplane.infer(name, version, rows, alias=alias, request_id=request_id)
    request.scope[ANSWERED_BY] = (result.model, result.version)
    return result


async def read_body(request: Request) -> bytes:
    """``await request.body()`` without its async generator."""
    chunks: list[bytes] = []
    while True:
        message = await request.receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect


def parse_version(raw: str | None) -> int | None:
    """The ``version`` query parameter: an integer >= 1 (``service.http.numbers``)."""
    return None if raw is None else parse_int(raw, "query.version", minimum=1)


def answered_by(result: InferenceResult | Explanation) -> dict[str, Any]:
    """The head of a predict or explain answer: who answered (``schemas.AnsweredBy``)."""
    return {
        "model": result.model,
        "version": str(result.version),
        "alias": result.alias,
        "device": result.device,
        "runtime": result.runtime,
    }


def encode(result: InferenceResult, **extra: Any) -> bytes:
    """The JSON answer of every predict route (``PredictResponse``), plus ``extra`` fields."""
    probabilities = result.probabilities  # (N, 10) float32 rows
    flags, scores = result.outliers, result.outlier_scores
    n = len(probabilities)
    predictions = [
        {"label": label, "probabilities": row, "outlier": flag, "outlier_score": score}
        for label, row, flag, score in zip(
            result.labels.tolist(),
            probabilities,
            [None] * n if flags is None else flags.tolist(),
            [None] * n if scores is None else scores.tolist(),
            strict=True,
        )
    ]
    body = {**answered_by(result), "predictions": predictions, **extra}
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
