"""The application factory: ``create_app(settings)`` builds everything on ``app.state``.

Nothing is created at import time; a test builds a whole app on a temporary folder with its
own ``Settings``.
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

from service.device import resolve_device
from service.errors import ServiceError
from service.registry import ModelRegistry
from service.repository import ModelRepository
from service.routes import health
from service.settings import Settings

log = logging.getLogger(__name__)


async def _watch_models(registry: ModelRegistry, interval: float) -> None:
    """Poll the models folder so versions published by any process get served."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(registry.refresh)
        except OSError as exc:  # a transient filesystem error must not stop the watcher
            log.warning("scanning the models folder failed: %s", exc)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI app; the lifespan loads the models and starts the collaborators."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        torch.set_num_threads(settings.torch_threads)
        device = resolve_device(settings.device)
        registry = ModelRegistry(ModelRepository(settings.models_dir), device)
        app.state.settings = settings
        app.state.device = device
        app.state.registry = registry
        app.state.ready = False
        async with contextlib.AsyncExitStack() as stack:
            await asyncio.to_thread(registry.refresh)
            if settings.reload_interval_s > 0:
                watcher = asyncio.create_task(_watch_models(registry, settings.reload_interval_s))
                stack.callback(watcher.cancel)
            app.state.ready = len(registry) > 0
            log.info("ready: %d model version(s) on %s", len(registry), device)
            yield

    app = FastAPI(
        title="digits-serve",
        version="0.1.0",
        summary="Serve and retrain the torch.nn lecture's digit classifiers.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.ready = False
    for router in (health.router,):
        app.include_router(router)
    app.add_exception_handler(ServiceError, handle_service_error)  # type: ignore[arg-type]  # starlette types handlers loosely
    app.add_exception_handler(RequestValidationError, handle_validation_error)  # type: ignore[arg-type]  # same
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
