"""Dependencies that hand route handlers the collaborators living on ``app.state``.

Routes reach app state only through these (as ``Annotated`` aliases where FastAPI solves
them; the predict endpoints, which take the raw ``Request``, call ``get_dataplane``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.http.feeds import JobFeeds
from service.http.plots import PlotQueue
from service.inference.dataplane import DataPlane
from service.inference.registry import ModelRegistry
from service.jobs import Jobs
from service.metrics import ServiceMetrics
from service.rollout.aliases import AliasStore
from service.settings import Settings


def get_registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


def get_started_registry(request: Request) -> ModelRegistry | None:
    """The registry once the lifespan has finished starting, else ``None``."""
    state = request.app.state
    return state.registry if getattr(state, "started", False) else None


def get_dataplane(request: Request) -> DataPlane:
    dataplane: DataPlane = request.app.state.dataplane
    return dataplane


def get_aliases(request: Request) -> AliasStore:
    aliases: AliasStore = request.app.state.aliases
    return aliases


def get_jobs(request: Request) -> Jobs:
    jobs: Jobs = request.app.state.jobs
    return jobs


def get_plotter(request: Request) -> PlotQueue:
    """The bounded queue of the one thread that draws plots (matplotlib's Agg is not safe
    across threads)."""
    plotter: PlotQueue = request.app.state.plotter
    return plotter


def get_feeds(request: Request) -> JobFeeds:
    """The shared, bounded polls behind the job event streams."""
    feeds: JobFeeds = request.app.state.feeds
    return feeds


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_metrics(request: Request) -> ServiceMetrics:
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
StartedRegistryDep = Annotated[ModelRegistry | None, Depends(get_started_registry)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
JobsDep = Annotated[Jobs, Depends(get_jobs)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
AliasesDep = Annotated[AliasStore, Depends(get_aliases)]
DataPlaneDep = Annotated[DataPlane, Depends(get_dataplane)]
PlotterDep = Annotated[PlotQueue, Depends(get_plotter)]
FeedsDep = Annotated[JobFeeds, Depends(get_feeds)]
