"""The application factory: ``create_app(settings)`` builds everything on ``app.state``.

Nothing is created at import time; a test builds a whole app on a temporary folder with its
own ``Settings``. Built in ``create_app``: ``settings``, ``metrics``, the routers and the
middleware (metrics with the request id and access line, then access, then body limits:
every request passes all three). Built in the lifespan, in this order: the database's one
engine (``service/db``: the store migrated under a lock, or refused when it is behind and
``DIGITS_DB_AUTO_MIGRATE=false``), ``device``, ``registry`` (with the ``aliases`` store: which
version answers), ``dataplane`` (micro-batchers and the forward thread), the models watcher,
``jobs`` (on the same engine); then ``started``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from sqlalchemy import Engine
from starlette.routing import Route

from service.db import open_database
from service.http import handlers
from service.http.access import (
    AccessControl,
    Keys,
    allowed_hosts,
    document,
    is_loopback,
    unauthenticated_warning,
)
from service.http.deadlines import RequestDeadline
from service.http.feeds import JobFeeds, poll
from service.http.middleware import BodyLimit, RequestMetrics
from service.http.plots import PlotQueue
from service.http.policy import OPEN, RouteTable, needs
from service.http.routes import (
    console,
    docs,
    explain,
    health,
    image,
    metrics,
    models,
    predict,
    rollout,
    train,
    v2,
    v2_repository,
)
from service.inference.artifact_store import VersionStore
from service.inference.dataplane import DataPlane
from service.inference.device import resolve_device
from service.inference.registry import ModelRegistry
from service.inference.repository import ModelRepository
from service.jobs import open_job_runner
from service.metrics import ServiceMetrics
from service.rollout.aliases import AliasStore
from service.settings import Settings
from service.startup import resume_gc

log = logging.getLogger(__name__)

_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI app; the lifespan loads the models and starts the collaborators."""
    settings = settings or Settings()
    app = FastAPI(
        title="digits-serve",
        version="0.1.0",
        summary="Serve and retrain the torch.nn lecture's digit classifiers.",
        openapi_tags=docs.OPENAPI_TAGS,
        docs_url=None,  # served from local files by service/http/routes/docs.py
        redoc_url=None,
        lifespan=_lifespan,
        # FastAPI's native OpenTelemetry looks up the global providers on every request
        # (docs/service.md); off unless asked for (DIGITS_OPENTELEMETRY=1).
        telemetry=None if settings.opentelemetry else _NO_TELEMETRY,
    )
    app.state.settings = settings
    app.state.metrics = ServiceMetrics()
    app.state.started = False
    app.state.image_decodes = asyncio.Semaphore(image.DECODES_AT_ONCE)
    _include_routers(app)
    # The table of what each route declared (access, Allow headers, OpenAPI); an undeclared
    # route stops the start here.
    routes = RouteTable.of(app.routes)
    keys = Keys(settings)
    app.state.keys = keys
    _add_middleware(app, settings, routes, keys)
    handlers.install(app, routes)
    _document_access(app, routes, keys)
    return app


def _include_routers(app: FastAPI) -> None:
    """Every resource's router, and FastAPI's own ``/openapi.json`` declared open."""
    routers = (
        *(predict.router, image.router, explain.router, models.router, rollout.router),
        train.router,
        health.router,
        *(console.curves_router, metrics.router, v2.router, v2_repository.router),
        *(docs.router, console.router),
    )
    for router in routers:
        app.include_router(router)
    # FastAPI's own route, /openapi.json, declared here where FastAPI declares it: open, as
    # Swagger UI must load it before a key is entered.
    for route in app.routes:
        if isinstance(route, Route) and route.path == app.openapi_url:
            needs(OPEN)(route.endpoint)


def _add_middleware(app: FastAPI, settings: Settings, routes: RouteTable, keys: Keys) -> None:
    # The last added runs first: metrics (and the access line) see every answer, access runs
    # before any body is read, each request gets its deadline (service/http/deadlines.py),
    # and the predict front (service/http/routes/predict.py) is inside them all. The front
    # serves both inference protocols' inference routes: /predict and /v2 .../infer (each
    # request is matched against them in turn: only the POST routes, the most frequent first).
    front = [*predict.router.routes, *v2.infer_routes()]
    app.add_middleware(predict.PredictFront, routes=front)
    app.add_middleware(RequestDeadline, timeout_ms=settings.request_timeout_ms)
    app.add_middleware(
        BodyLimit, max_bytes=settings.max_body_bytes, read_timeout_s=settings.body_read_timeout_s
    )
    app.add_middleware(AccessControl, keys=keys, table=routes, hosts=allowed_hosts(settings))
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)


def _document_access(app: FastAPI, table: RouteTable, keys: Keys) -> None:
    """The OpenAPI schema says which operations need a key, from the one policy table and
    the keys these settings configure."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(generate(), table, keys)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    async with contextlib.AsyncExitStack() as stack:
        engine = await asyncio.to_thread(
            open_database, settings.database_url, auto_migrate=settings.db_auto_migrate
        )
        stack.callback(engine.dispose)
        dataplane = await _open_dataplane(app, settings, engine, stack)
        resume_gc()  # paused by ``python -m service`` until the models are loaded
        _watch_models(dataplane, settings.reload_interval_s, stack)
        app.state.jobs = await stack.enter_async_context(
            open_job_runner(settings, engine, dataplane.refresh, app.state.metrics.registry)
        )
        # Plots are drawn in their own thread, never on the default executor that every
        # database call goes through: a burst of plot requests must not delay job calls.
        app.state.plotter = PlotQueue(settings.max_queued_plots)
        stack.callback(app.state.plotter.close)
        app.state.feeds = JobFeeds(
            functools.partial(poll, app.state.jobs),
            per_job=settings.max_event_followers_per_job,
            total=settings.max_event_followers,
        )
        stack.push_async_callback(app.state.feeds.aclose)
        app.state.started = True
        registry = app.state.registry
        warning = unauthenticated_warning(settings)
        if warning is not None:
            log.warning("%s", warning)
        if settings.allowed_hosts is None and not is_loopback(settings.host):
            log.info("DIGITS_ALLOWED_HOSTS unset on %s: any Host is answered", settings.host)
        log.info("started: %d model version(s) on %s", len(registry), registry.device)
        yield
        app.state.started = False


async def _open_dataplane(
    app: FastAPI, settings: Settings, engine: Engine, stack: contextlib.AsyncExitStack
) -> DataPlane:
    """Load and warm every version on disk, one micro-batcher each."""
    device = resolve_device(settings.device)
    repository = ModelRepository(
        settings.models_dir,
        settings.versions_dir,
        serve_with=settings.runtime,
        threads=settings.torch_threads,
    )
    aliases = AliasStore(engine)
    app.state.aliases = aliases
    store = VersionStore(settings.versions_url) if settings.versions_url else None
    registry = ModelRegistry(repository, device, aliases, store)
    app.state.registry = registry
    app.state.metrics.track_models(lambda: len(registry))
    dataplane = DataPlane(
        registry,
        app.state.metrics,
        default_model=settings.default_model,
        max_rows=settings.max_rows,
        max_batch_size=settings.max_batch_size,
        max_wait_ms=settings.max_wait_ms,
        max_queued_rows=settings.max_queued_rows,
        freeze_heap=settings.freeze_heap,
        inline_forward_max_us=settings.inline_forward_max_us,
        shadow_queue_size=settings.shadow_queue_size,
    )
    stack.push_async_callback(dataplane.aclose)
    await dataplane.refresh()
    app.state.dataplane = dataplane
    return dataplane


def _watch_models(dataplane: DataPlane, interval: float, stack: contextlib.AsyncExitStack) -> None:
    """Poll the model folders so versions published (or removed) by any process are seen."""
    if interval <= 0:
        return

    async def watch() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await dataplane.refresh()
            except OSError as exc:  # a transient filesystem error must not stop the watcher
                log.warning("scanning the models folders failed: %s", exc)

    task = asyncio.create_task(watch(), name="models-watcher")
    stack.callback(task.cancel)
