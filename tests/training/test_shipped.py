"""The artifacts committed under ``models/`` are intact, as accurate as they claim, calibrated
and flag what is not a digit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training.calibration import TEMPERATURE_RANGE, figures
from training.contract import read_manifest, sha256_file
from training.data import Split
from training.ensemble_spec import DEFAULT_MEMBERS, ENSEMBLE
from training.outlier import made_inputs
from training.specs import FAMILIES

SHIPPED = [*FAMILIES, ENSEMBLE]


def _load(folder: Path) -> torch.jit.ScriptModule:
    module: torch.jit.ScriptModule = torch.jit.load(str(folder / "model.pt"))  # type: ignore[no-untyped-call]
    return module


@pytest.mark.parametrize("family", SHIPPED)
def test_shipped_artifact_matches_its_manifest_and_accuracy(
    shipped_models_dir: Path, split: Split, family: str
) -> None:
    """models/<family>/1 has the manifest's sha256, reaches its test accuracy on 360 rows, was
    fitted on every training row and records its out-of-fold held-out accuracy."""
    folder = shipped_models_dir / family / "1"
    manifest = read_manifest(folder)
    assert manifest.family == family
    assert manifest.recipe == "default"
    assert sha256_file(folder / "model.pt") == manifest.sha256
    with torch.inference_mode():
        predicted = _load(folder)(split.x_test).argmax(dim=1)
    correct = int((predicted == split.y_test).sum())
    assert len(split.y_test) - correct == manifest.metrics.test_errors
    assert correct / len(split.y_test) == pytest.approx(manifest.metrics.test_accuracy)
    for name in ("curves.json", "curves.png", "reliability.png"):
        assert (folder / name).is_file()
    assert manifest.data_split["n_train"] == len(split.y_train)
    assert manifest.validation is not None
    assert manifest.validation["from"] == "out_of_fold"
    assert manifest.validation["n_validation"] == len(split.y_train)


@pytest.mark.parametrize("family", SHIPPED)
def test_shipped_probabilities_are_calibrated(
    shipped_models_dir: Path, split: Split, family: str
) -> None:
    """The served probabilities (the module's softmax) have a fitted temperature (not at a
    bound), ECE <= 0.015 and a lower NLL than before it on the test rows, and wrong answers
    get a lower confidence than right ones."""
    folder = shipped_models_dir / family / "1"
    calibration = read_manifest(folder).calibration or {}
    low, high = TEMPERATURE_RANGE
    assert low * 1.01 < calibration["temperature"] < high / 1.01
    assert not calibration["temperature_at_bound"]
    assert calibration["nll_test_after"] < calibration["nll_test_before"]
    with torch.inference_mode():
        measured = figures(_load(folder)(split.x_test).double(), split.y_test)
    assert measured["ece"] == pytest.approx(calibration["ece_test_after"], abs=1e-5)
    assert measured["ece"] <= 0.015
    if measured["conf_wrong"] == measured["conf_wrong"]:  # NaN: no wrong answer to compare
        assert measured["conf_wrong"] < measured["conf_right"] - 0.1


@pytest.mark.parametrize("family", SHIPPED)
def test_shipped_module_flags_what_is_not_a_digit(
    shipped_models_dir: Path, split: Split, family: str
) -> None:
    """The module scores outliers in the same call as its logits, with the manifest's
    threshold: blank and noise inputs are flagged, at most 2% of the test rows are."""
    folder = shipped_models_dir / family / "1"
    module = _load(folder)
    outlier = read_manifest(folder).outlier or {}
    assert module.outlier_threshold == pytest.approx(outlier["threshold"], abs=1e-3)
    made = made_inputs(split)

    def flagged(x: torch.Tensor) -> float:
        with torch.inference_mode():
            logits, score = module.forward_scored(x)
        assert torch.equal(logits, module(x))
        return float((score > module.outlier_threshold).double().mean())

    assert flagged(split.x_test) <= 0.02
    for name in ("all zeros", "uniform noise", "salt-and-pepper"):
        assert flagged(made[name]) >= 0.95, name


def test_shipped_ensemble_lists_its_default_members(shipped_models_dir: Path) -> None:
    """models/ensemble/1 names its members, the default ones, each with a distinct seed."""
    members = read_manifest(shipped_models_dir / ENSEMBLE / "1").members or []
    assert [m["family"] for m in members] == list(DEFAULT_MEMBERS)
    assert len({m["seed"] for m in members}) == len(DEFAULT_MEMBERS)
