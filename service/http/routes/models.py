"""What is served: ``GET /models`` and ``GET /models/{name}``, with each model's aliases,
traffic split and shadow agreement."""

from __future__ import annotations

from fastapi import APIRouter

from service.http.deps import DataPlaneDep
from service.http.policy import READ, needs
from service.http.schemas import ModelInfo, ModelList, ModelVersion, ShadowView, Traffic
from service.inference.dataplane import DataPlane
from service.rollout.aliases import Routing

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", summary="List the models served and their versions")
@needs(READ)
async def list_models(dataplane: DataPlaneDep) -> ModelList:
    """Every model with its loaded versions, their manifests, aliases and traffic."""
    registry = dataplane.registry
    return ModelList(
        device=str(registry.device),
        models=[_info(dataplane, name) for name in registry.names()],
    )


@router.get(
    "/{name}",
    summary="Show one model",
    responses={404: {"description": "no such model; lists those that exist"}},
)
@needs(READ)
async def get_model(name: str, dataplane: DataPlaneDep) -> ModelInfo:
    """One model: its versions, their manifests (metrics, input spec, sha256), its aliases,
    traffic split and the shadow agreement so far."""
    return _info(dataplane, name)


def _info(dataplane: DataPlane, name: str) -> ModelInfo:
    registry = dataplane.registry
    state = registry.state(name)
    routing = registry.routing(name)
    by_version: dict[int, list[str]] = {}
    for alias, version in sorted(routing.aliases.items()):
        by_version.setdefault(version, []).append(alias)
    return ModelInfo(
        name=name,
        default_version=state.default_version,
        aliases=routing.aliases,
        traffic=_traffic(dataplane, name, routing),
        ready=state.ready,
        reason=state.reason,
        device=str(registry.device),
        versions=[
            ModelVersion(
                version=m.version,
                is_default=m.version == state.default_version,
                aliases=by_version.get(m.version, []),
                created=m.manifest.created,
                runtime=m.runtime.name,
                platform=m.runtime.platform,
                manifest=m.manifest,
            )
            for m in registry.versions(name)
        ],
    )


def _traffic(dataplane: DataPlane, name: str, routing: Routing) -> Traffic:
    """The canary weights and shadow of ``name``, with the shadow agreement so far."""
    stats, dropped = dataplane.shadow.stats(name)
    return Traffic(
        weights=routing.weights,
        shadow=routing.shadow,
        shadow_stats=[
            ShadowView(
                version=s.version,
                shadow_version=s.shadow,
                compared=s.compared,
                agreed=s.agreed,
                agreement_rate=s.agreement,
            )
            for s in stats
        ],
        shadow_dropped=dropped,
    )
