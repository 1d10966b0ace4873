"""What is served: ``GET /models`` and ``GET /models/{name}``."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import RegistryDep
from service.registry import ModelRegistry
from service.schemas import ModelInfo, ModelList, ModelVersion

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", summary="List the models served and their versions")
async def list_models(registry: RegistryDep) -> ModelList:
    """Every model with its loaded versions, their manifests and the default version."""
    return ModelList(
        device=str(registry.device),
        models=[_info(registry, name) for name in registry.names()],
    )


@router.get(
    "/{name}",
    summary="Show one model",
    responses={404: {"description": "no such model; lists those that exist"}},
)
async def get_model(name: str, registry: RegistryDep) -> ModelInfo:
    """One model: its versions, their manifests (metrics, input spec, sha256) and the default."""
    return _info(registry, name)


def _info(registry: ModelRegistry, name: str) -> ModelInfo:
    state = registry.state(name)
    return ModelInfo(
        name=name,
        default_version=state.default_version,
        ready=state.ready,
        reason=state.reason,
        device=str(registry.device),
        versions=[
            ModelVersion(
                version=m.version,
                is_default=m.version == state.default_version,
                created=m.manifest.created,
                manifest=m.manifest,
            )
            for m in registry.versions(name)
        ],
    )
