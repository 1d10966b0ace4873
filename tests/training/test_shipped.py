"""The artifacts committed under ``models/`` are intact and as accurate as they claim."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training.data import Split
from training.export import read_manifest, sha256_file
from training.models import FAMILIES


@pytest.mark.parametrize("family", FAMILIES)
def test_shipped_artifact_matches_its_manifest_and_accuracy(
    shipped_models_dir: Path, split: Split, family: str
) -> None:
    """models/<family>/1 has the manifest's sha256 and reaches its test accuracy on 360 rows."""
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
