"""``ModelRegistry.unload`` / ``load`` and the data plane's (the /v2 repository extension): an
unloaded model stays out of memory, even across refreshes, until it is loaded again; the others
are untouched."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

from service.errors import ModelNotFound, ModelUnloaded
from service.inference.registry import ModelRegistry
from service.inference.repository import ModelRepository
from service.rollout.aliases import AliasStore
from tests.service.conftest import write_artifact
from tests.service.test_dataplane import small_dataplane
from tests.service.test_registry import lit


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    """Models ``m`` (versions 1 and 2) and ``n`` (version 1), loaded."""
    for version in (1, 2):
        write_artifact(tmp_path / "shipped", "m", version, lit(version))
    write_artifact(tmp_path / "shipped", "n", 1, lit(5))
    repository = ModelRepository(tmp_path / "shipped", tmp_path / "runtime")
    loaded = ModelRegistry(
        repository, "cpu", AliasStore.open(f"sqlite:///{tmp_path / 'aliases.db'}")
    )
    loaded.refresh()
    return loaded


def test_an_unloaded_model_stays_out_across_refreshes(registry: ModelRegistry) -> None:
    """Every version leaves memory, ``get`` says it is unloaded, its state says why, a
    refresh of the folders does not bring it back, and the other model still answers."""
    registry.unload("m")
    for version in (None, 1, 2):
        with pytest.raises(ModelUnloaded, match="model 'm' is unloaded"):
            registry.get("m", version)
    registry.refresh()
    with pytest.raises(ModelUnloaded):
        registry.get("m")
    state = registry.state("m")
    assert (state.ready, state.unloaded) == (False, True)
    assert "unloaded on request" in str(state.reason)
    assert registry.versions("m") == []
    assert registry.get("n").version == 1
    assert len(registry) == 1


def test_load_brings_every_version_back(registry: ModelRegistry) -> None:
    """After ``load`` both versions answer again, with their own weights."""
    before = registry.get("m", 2)
    registry.unload("m")
    loaded = registry.load("m")
    assert sorted(m.version for m in loaded) == [1, 2]
    again = registry.get("m", 2)
    assert again is not before  # read from disk again
    assert int(again.predict_proba(torch.zeros(1, 64)).argmax()) == 2
    assert registry.state("m").ready


def test_unload_or_load_of_an_unknown_model_is_refused(registry: ModelRegistry) -> None:
    """Neither names a model that is not on disk."""
    with pytest.raises(ModelNotFound):
        registry.unload("svm")
    with pytest.raises(ModelNotFound):
        registry.load("svm")


@pytest.mark.anyio
async def test_unload_releases_the_models_and_load_serves_again(tmp_path: Path) -> None:
    """Through the data plane: after unload no reference to the model is left (its batcher is
    closed, not kept), and after load it answers again."""
    write_artifact(tmp_path / "shipped", "m", 1, lit(3))
    plane = small_dataplane(tmp_path / "shipped")
    await plane.refresh()
    try:
        rows = np.zeros((1, 64), dtype=np.float32)
        assert (await plane.infer("m", None, rows)).labels.tolist() == [3]
        model = weakref.ref(plane.registry.get("m"))
        await plane.unload("m")
        for _ in range(3):
            await asyncio.sleep(0)  # the loop drops its last handles on the closed task
        gc.collect()
        assert model() is None
        with pytest.raises(ModelUnloaded):
            await plane.infer("m", None, rows)
        await plane.load("m")
        assert (await plane.infer("m", None, rows)).labels.tolist() == [3]
    finally:
        await plane.aclose()
