"""The application factory: ``create_app(settings)`` builds everything on ``app.state``.

Nothing is created at import time; a test builds a whole app on a temporary folder with its
own ``Settings``. State: ``settings``, ``metrics`` (built in ``create_app``), then, in the
lifespan, ``device``, ``registry``, ``dataplane`` (micro-batchers + forward thread), ``ready``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from service.dataplane import DataPlane
from service.device import resolve_device
from service.errors import ServiceError
from service.jobs import open_job_runner
from service.metrics import ServiceMetrics
from service.middleware import BodyLimit, RequestMetrics
from service.registry import ModelRegistry
from service.repository import ModelRepository
from service.routes import docs, health, metrics, models, predict, train
from service.settings import Settings

log = logging.getLogger(__name__)


async def _watch_models(dataplane: DataPlane, interval: float) -> None:
    """Poll the models folder so versions published by any process get served."""
    while True:
        await asyncio.sleep(interval)
        try:
            await dataplane.refresh()
        except OSError as exc:  # a transient filesystem error must not stop the watcher
            log.warning("scanning the models folder failed: %s", exc)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI app; the lifespan loads the models and starts the collaborators."""
    settings = settings or Settings()
    service_metrics = ServiceMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            # --- models: load and warm every version on disk (in a thread) ---------------
            torch.set_num_threads(settings.torch_threads)
            device = resolve_device(settings.device)
            registry = ModelRegistry(ModelRepository(settings.models_dir), device)
            app.state.device = device
            app.state.registry = registry
            service_metrics.track_models(lambda: len(registry))
            await asyncio.to_thread(registry.refresh)

            # --- data plane: one micro-batcher per version, one forward thread ----------
            dataplane = DataPlane(
                registry,
                service_metrics,
                default_model=settings.default_model,
                max_rows=settings.max_rows,
                max_batch_size=settings.max_batch_size,
                max_wait_ms=settings.max_wait_ms,
                inline_forward_max_us=settings.inline_forward_max_us,
                torch_threads=settings.torch_threads,
            )
            stack.push_async_callback(dataplane.aclose)
            dataplane.sync()
            await dataplane.warm_up()
            app.state.dataplane = dataplane

            # --- new versions on disk become servable without a restart -----------------
            if settings.reload_interval_s > 0:
                watcher = asyncio.create_task(_watch_models(dataplane, settings.reload_interval_s))
                stack.callback(watcher.cancel)

            # --- training jobs: the job runner is wired here ----------------------------
            app.state.jobs = await stack.enter_async_context(
                open_job_runner(settings, dataplane.refresh, service_metrics.registry)
            )

            # --- ready: every model on disk at start-up is loaded and warmed ------------
            app.state.ready = len(registry) > 0
            log.info("ready: %d model version(s) on %s", len(registry), device)
            yield
            app.state.ready = False

    app = FastAPI(
        title="digits-serve",
        version="0.1.0",
        summary="Serve and retrain the torch.nn lecture's digit classifiers.",
        openapi_tags=docs.OPENAPI_TAGS,
        docs_url=None,  # served from local files by service/routes/docs.py
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = service_metrics
    app.state.ready = False
    for router in (predict.router, models.router, train.router, health.router, metrics.router):
        app.include_router(router)
    app.include_router(docs.router)
    # The last added runs first: count every request, including those refused for size;
    # then the predict fast path (see service/routes/predict.py), in front of the router.
    app.add_middleware(predict.PredictFastPath)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=service_metrics)
    app.add_exception_handler(ServiceError, handle_service_error)  # type: ignore[arg-type]  # starlette types handlers loosely
    app.add_exception_handler(RequestValidationError, handle_validation_error)  # type: ignore[arg-type]  # same
    app.add_exception_handler(HTTPException, handle_http_error)  # type: ignore[arg-type]  # same
    app.add_exception_handler(Exception, handle_unexpected_error)
    return app


async def handle_service_error(request: Request, exc: ServiceError) -> JSONResponse:
    """Render a domain error in the service's JSON envelope."""
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)


async def handle_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Render FastAPI's validation errors in the same envelope, naming each bad field."""
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
    return JSONResponse(body, status_code=422)


async def handle_http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Render Starlette's HTTP errors (unknown path, wrong method) in the same envelope."""
    cause = exc.__cause__
    if exc.status_code == 400 and isinstance(cause, UnicodeDecodeError | RecursionError):
        # FastAPI's bare 400 for a JSON body it could not even decode: a 422 like the others.
        reason = "not UTF-8" if isinstance(cause, UnicodeDecodeError) else "nested too deeply"
        error = {
            "code": "invalid_input",
            "message": f"body: the request body is not valid JSON ({reason})",
            "expected": "a JSON object, UTF-8 encoded (Content-Type: application/json)",
        }
        return JSONResponse({"error": error}, status_code=422)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    body = {"error": {"code": code, "message": str(exc.detail), "expected": None}}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def handle_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """The one catch-all: log the traceback, answer 500 in the envelope without details."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    body = {"error": {"code": "internal", "message": "internal server error", "expected": None}}
    return JSONResponse(body, status_code=500)
