"""The artifacts committed under ``models/`` are intact and as accurate as they claim."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training.data import Split
from training.ensemble import DEFAULT_MEMBERS, ENSEMBLE
from training.export import read_manifest, sha256_file
from training.models import FAMILIES


@pytest.mark.parametrize("family", [*FAMILIES, ENSEMBLE])
def test_shipped_artifact_matches_its_manifest_and_accuracy(
    shipped_models_dir: Path, split: Split, family: str
) -> None:
    """models/<family>/1 has the manifest's sha256, reaches its test accuracy on 360 rows, was
    fitted without the validation rows and records its temperature and reliability diagram."""
    folder = shipped_models_dir / family / "1"
    manifest = read_manifest(folder)
    assert manifest.family == family
    assert manifest.recipe == "default"
    assert sha256_file(folder / "model.pt") == manifest.sha256
    module = torch.jit.load(str(folder / "model.pt"))
    with torch.inference_mode():
        predicted = module(split.x_test).argmax(dim=1)
    correct = int((predicted == split.y_test).sum())
    assert len(split.y_test) - correct == manifest.metrics.test_errors
    assert correct / len(split.y_test) == pytest.approx(manifest.metrics.test_accuracy)
    assert (folder / "curves.json").is_file()
    assert (folder / "curves.png").is_file()
    assert (folder / "reliability.png").is_file()
    assert manifest.validation is not None
    assert (
        manifest.data_split["n_train"] == len(split.y_train) - manifest.validation["n_validation"]
    )
    assert manifest.calibration is not None
    # The temperature minimises the validation NLL, so it can only lower it (ECE may move
    # either way: it is not what is minimised).
    assert (
        manifest.calibration["nll_validation_after"]
        <= manifest.calibration["nll_validation_before"]
    )


def test_shipped_ensemble_lists_its_default_members(shipped_models_dir: Path) -> None:
    """models/ensemble/1 names its members, the default ones, each with a distinct seed."""
    members = read_manifest(shipped_models_dir / ENSEMBLE / "1").members or []
    assert [m["family"] for m in members] == list(DEFAULT_MEMBERS)
    assert len({m["seed"] for m in members}) == len(DEFAULT_MEMBERS)
