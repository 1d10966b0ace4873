"""Exception handlers: every error leaves the service in one JSON envelope,
``{"error": {"code", "message", "expected", ...}, "request_id"}`` (see ``service/errors.py``;
``request_id``: the request's ``X-Request-Id``, service/http/request_log.py)."""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.types import Scope

from service.errors import ServiceError, StoreUnavailable, database_failure
from service.http.policy import RouteTable
from service.http.request_log import REQUEST_ID, with_request_id

log = logging.getLogger(__name__)

#: ``Retry-After`` of a 503 while the job store cannot be read or written.
STORE_RETRY_AFTER_S = 10
#: While the job store stays down with the same error, it is logged once per this many s.
STORE_LOG_EVERY_S = 60.0


class _Outage:
    """When to log the job store's error: once, then again when it changes or after
    ``STORE_LOG_EVERY_S``; not once per request (an outage meets every request)."""

    def __init__(self) -> None:
        self.last: tuple[str, float] | None = None

    def due(self, error: str) -> bool:
        now = time.monotonic()
        last = self.last
        if last is not None and last[0] == error and now - last[1] < STORE_LOG_EVERY_S:
            return False
        self.last = (error, now)
        return True


def install(app: FastAPI, routes: RouteTable) -> None:
    """Register the handlers; ``routes`` answers which methods a path serves (405/OPTIONS)."""

    async def handle_http_error(request: Request, exc: HTTPException) -> Response:
        return http_error(request, exc, routes)

    outage = _Outage()

    async def handle_store_error(request: Request, exc: OperationalError) -> JSONResponse:
        """The job store failed (database down, connection lost, disk full): a 503 that says
        what failed and when to retry, never where the database is (the log says)."""
        if outage.due(str(exc.orig)):
            log.warning(
                "job store unavailable (first seen on %s %s; logged again after %g s or "
                "when it changes): %s",
                *(request.method, request.url.path, STORE_LOG_EVERY_S, exc.orig),
            )
        return error_response(
            StoreUnavailable(
                f"{database_failure(exc)}: the job store cannot serve this request now",
                expected=f"retry after {STORE_RETRY_AFTER_S} s",
                headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
            ),
            request.scope,
        )

    app.add_exception_handler(ServiceError, handle_service_error)  # type: ignore[arg-type]  # starlette types handlers loosely
    app.add_exception_handler(RequestValidationError, handle_validation_error)  # type: ignore[arg-type]  # same
    app.add_exception_handler(HTTPException, handle_http_error)  # type: ignore[arg-type]  # same
    app.add_exception_handler(OperationalError, handle_store_error)  # type: ignore[arg-type]  # same
    app.add_exception_handler(Exception, handle_unexpected_error)


async def handle_service_error(request: Request, exc: ServiceError) -> JSONResponse:
    """Render a domain error in the service's JSON envelope."""
    return error_response(exc, request.scope)


async def handle_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Render FastAPI's validation errors in the same envelope, naming each bad field."""
    return error_response(exc, request.scope)


def error_response(exc: ServiceError | RequestValidationError, scope: Scope) -> JSONResponse:
    """The envelope of a domain error, or of FastAPI's validation errors (naming each field),
    with the id of the request of ``scope``."""
    if isinstance(exc, ServiceError):
        body = with_request_id(exc.body(), scope)
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
    problems = [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "message": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    first = problems[0] if problems else {"loc": [], "message": "invalid request"}
    where = ".".join(first["loc"]) or "body"
    body = {
        "error": {
            "code": "invalid_input",
            "message": f"{where}: {first['message']}",
            "expected": None,
            "problems": problems,
        }
    }
    return JSONResponse(with_request_id(body, scope), status_code=422)


def http_error(request: Request, exc: HTTPException, routes: RouteTable) -> Response:
    """Starlette's HTTP errors (unknown path, wrong method) in the same envelope; a 405 and
    an ``OPTIONS`` request list every method the path serves in ``Allow``."""
    cause = exc.__cause__
    if exc.status_code == 400 and isinstance(cause, UnicodeDecodeError | RecursionError):
        # FastAPI's bare 400 for a JSON body it could not even decode: a 422 like the others.
        reason = "not UTF-8" if isinstance(cause, UnicodeDecodeError) else "nested too deeply"
        error = {
            "code": "invalid_input",
            "message": f"body: the request body is not valid JSON ({reason})",
            "expected": "a JSON object, UTF-8 encoded (Content-Type: application/json)",
        }
        return JSONResponse(with_request_id({"error": error}, request.scope), status_code=422)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        methods = routes.methods(request.url.path) or {}
        allow = ", ".join(sorted({*methods, "OPTIONS"}))
        headers["Allow"] = allow
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=headers)
        message = f"{request.method} is not served at {request.url.path}; it serves {allow}"
        error = {"code": "method_not_allowed", "message": message, "expected": allow}
        body = with_request_id({"error": error}, request.scope)
        return JSONResponse(body, status_code=405, headers=headers)
    code = {404: "not_found"}.get(exc.status_code, "http_error")
    envelope = {"code": code, "message": str(exc.detail), "expected": None}
    body = with_request_id({"error": envelope}, request.scope)
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


async def handle_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """The one catch-all: log the traceback, answer 500 in the envelope without details.
    Starlette runs it outside the middleware, so it sends ``X-Request-Id`` itself."""
    rid = request.scope.get(REQUEST_ID)
    log.error(
        "unhandled error on %s %s (request %s)", request.method, request.url.path, rid, exc_info=exc
    )
    error = {"code": "internal", "message": "internal server error", "expected": None}
    body: dict[str, object] = {"error": error, "request_id": rid}
    headers = {"X-Request-Id": rid} if rid else None
    return JSONResponse(body, status_code=500, headers=headers)
