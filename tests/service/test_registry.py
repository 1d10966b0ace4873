"""``ModelRegistry``: which version answers, and that a refused one is never replaced."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from service.errors import ModelNotReady, VersionNotFound
from service.inference.registry import ModelRegistry
from service.inference.repository import ModelRepository
from service.rollout.aliases import AliasStore
from tests.service.conftest import write_artifact


def lit(pixel: int) -> torch.nn.Linear:
    """A Linear(64, 10) that predicts class ``pixel`` for every input: a version's signature."""
    layer = torch.nn.Linear(64, 10)
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
        layer.bias[pixel] = 10.0
    return layer


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    """A shipped folder with ``m`` versions 1 and 2 (labels 1 and 2), and an empty runtime one."""
    shipped, runtime = tmp_path / "shipped", tmp_path / "runtime"
    for version in (1, 2):
        write_artifact(shipped, "m", version, lit(version))
    return shipped, runtime


def registry_on(shipped: Path, runtime: Path) -> ModelRegistry:
    aliases = AliasStore.open(f"sqlite:///{shipped.parent / 'aliases.db'}")
    registry = ModelRegistry(ModelRepository(shipped, runtime), "cpu", aliases)
    registry.refresh()
    return registry


def pin(root: Path, version: int) -> None:
    """Write a legacy ``DEFAULT`` pin file for ``m`` under ``root``."""
    (root / "m").mkdir(parents=True, exist_ok=True)
    (root / "m" / "DEFAULT").write_text(f"{version}\n")


def label(registry: ModelRegistry, version: int | None = None) -> int:
    model = registry.get("m", version)
    return int(model.predict_proba(torch.zeros(1, 64)).argmax())


def test_production_is_the_first_version_until_it_is_moved(roots: tuple[Path, Path]) -> None:
    """A newer version never answers by default on its own, not even after a pin file is
    written later; a move of ``production`` does, at the next refresh."""
    shipped, runtime = roots
    registry = registry_on(shipped, runtime)
    assert label(registry) == 1
    pin(runtime, 2)  # legacy pins are read once, for a model without production
    registry.refresh()
    assert label(registry) == 1
    registry.aliases.move("m", "production", 2, actor="test", reason="better")
    registry.refresh()
    assert label(registry) == 2
    assert registry.state("m").default_version == 2


def test_a_legacy_pin_becomes_production_once(roots: tuple[Path, Path]) -> None:
    """A ``DEFAULT`` pin found for a model without aliases becomes its production, recorded
    in the history as migrated."""
    shipped, runtime = roots
    pin(runtime, 2)
    registry = registry_on(shipped, runtime)
    assert label(registry) == 2
    [move] = registry.aliases.history("m")
    assert (move.kind, move.from_version, move.to_version) == ("initial", None, 2)
    assert "DEFAULT" in move.reason


def test_corrupt_pinned_default_is_reported_not_replaced(roots: tuple[Path, Path]) -> None:
    """A pinned default whose file is corrupt makes the model not ready: no other version
    answers in its place, and the reason names the file; other versions stay reachable."""
    shipped, runtime = roots
    pin(runtime, 2)
    (shipped / "m" / "2" / "model.pt").write_bytes(b"corrupt")
    registry = registry_on(shipped, runtime)
    state = registry.state("m")
    assert state.ready is False
    assert state.reason is not None
    assert "production version 2" in state.reason
    assert "sha256" in state.reason
    with pytest.raises(ModelNotReady, match="sha256"):
        registry.get("m")
    with pytest.raises(ModelNotReady):
        registry.get("m", 2)
    assert label(registry, 1) == 1
    assert str(shipped / "m" / "2") in registry.failures


def test_refused_artifact_is_retried_when_its_file_changes(roots: tuple[Path, Path]) -> None:
    """Restoring a corrupt file makes the version serve at the next refresh, no restart."""
    shipped, runtime = roots
    good = (shipped / "m" / "1" / "model.pt").read_bytes()
    (shipped / "m" / "1" / "model.pt").write_bytes(b"corrupt")
    registry = registry_on(shipped, runtime)
    assert registry.state("m").ready is False
    registry.refresh()  # unchanged: still refused, not reloaded
    assert registry.state("m").ready is False
    (shipped / "m" / "1" / "model.pt").write_bytes(good)
    loaded = registry.refresh()
    assert [(m.name, m.version) for m in loaded] == [("m", 1)]
    assert registry.state("m").ready is True
    assert registry.failures == {}
    assert label(registry) == 1


def test_versions_removed_from_disk_are_forgotten(roots: tuple[Path, Path]) -> None:
    """A version folder deleted from disk stops answering at the next refresh."""
    shipped, runtime = roots
    registry = registry_on(shipped, runtime)
    shutil.rmtree(shipped / "m" / "2")
    registry.refresh()
    assert [m.version for m in registry.versions("m")] == [1]
    with pytest.raises(VersionNotFound):
        registry.get("m", 2)


def test_a_pin_to_a_missing_version_says_so(roots: tuple[Path, Path]) -> None:
    """A pinned default that is not on disk leaves the model not ready, saying why."""
    shipped, runtime = roots
    pin(runtime, 9)
    registry = registry_on(shipped, runtime)
    assert registry.state("m").reason == (
        "its production version 9 cannot be served: it is not on disk"
    )
