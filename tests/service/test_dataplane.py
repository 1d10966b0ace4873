"""``DataPlane``: rows in, the chosen version's probabilities out, through its batcher."""

from __future__ import annotations

import gc
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.errors import InvalidInput, VersionNotFound
from service.inference.dataplane import DataPlane
from service.inference.registry import ModelRegistry
from service.inference.repository import ModelRepository
from service.metrics import ServiceMetrics
from service.rollout.aliases import AliasStore
from tests.service.conftest import write_artifact
from tests.service.test_registry import lit

pytestmark = pytest.mark.anyio


def small_dataplane(models: Path, **options: Any) -> DataPlane:
    """A data plane on the model folder ``models`` (runtime folder and alias store beside
    it), model ``m`` by default, batches of at most 8 rows; not refreshed yet."""
    repository = ModelRepository(models, models.parent / "runtime")
    aliases = AliasStore.open(f"sqlite:///{models.parent / 'aliases.db'}")
    return DataPlane(
        ModelRegistry(repository, "cpu", aliases),
        ServiceMetrics(),
        default_model="m",
        max_rows=8,
        max_batch_size=8,
        max_wait_ms=0,
        **options,
    )


@pytest.fixture
async def dataplane(tmp_path: Path) -> AsyncIterator[DataPlane]:
    for version in (1, 2):
        write_artifact(tmp_path / "models", "m", version, lit(version))
    plane = small_dataplane(tmp_path / "models")
    await plane.refresh()
    yield plane
    await plane.aclose()


async def test_infer_answers_with_the_requested_version(dataplane: DataPlane) -> None:
    """The default version answers without a version, the named one with it."""
    rows = np.zeros((3, 64), dtype=np.float32)
    default = await dataplane.infer("m", None, rows)
    assert (default.version, default.labels.tolist()) == (1, [1, 1, 1])
    second = await dataplane.infer("m", 2, rows)
    assert (second.version, second.labels.tolist()) == (2, [2, 2, 2])
    assert second.probabilities.shape == (3, 10)


async def test_infer_refuses_rows_of_the_wrong_shape(dataplane: DataPlane) -> None:
    """Rows that are not float32 (N, 64) are refused before any batcher sees them."""
    with pytest.raises(InvalidInput, match=r"shape \(N, 64\)"):
        await dataplane.infer("m", None, np.zeros((1, 63), dtype=np.float32))


async def test_a_removed_version_stops_answering_after_refresh(
    dataplane: DataPlane, tmp_path: Path
) -> None:
    """After its folder is deleted and the disk is looked at again, the version is gone."""
    shutil.rmtree(tmp_path / "models" / "m" / "2")
    await dataplane.refresh()
    with pytest.raises(VersionNotFound):
        await dataplane.infer("m", 2, np.zeros((1, 64), dtype=np.float32))
    assert (await dataplane.infer("m", 1, np.zeros((1, 64), dtype=np.float32))).version == 1


async def test_loading_models_freezes_the_heap_out_of_the_collectors_way(tmp_path: Path) -> None:
    """With ``freeze_heap`` (the service's default) a refresh that loaded versions moves what
    is alive into the permanent generation, so later full collections do not walk it; a
    refresh that loaded nothing leaves the collector alone."""
    write_artifact(tmp_path / "models", "m", 1, lit(1))
    plane = small_dataplane(tmp_path / "models", freeze_heap=True)
    gc.unfreeze()
    try:
        await plane.refresh()
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # everything imported and loaded so far
        kept: list[list[int]] = [[] for _ in range(5000)]  # new long-lived (tracked) objects
        await plane.refresh()
        assert gc.get_freeze_count() < frozen + len(kept)  # not frozen: nothing was loaded
        write_artifact(tmp_path / "models", "m", 2, lit(2))
        await plane.refresh()
        assert gc.get_freeze_count() >= frozen + len(kept)
    finally:
        gc.unfreeze()  # the test process collects as before
        await plane.aclose()
