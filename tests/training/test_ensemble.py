"""The ensemble family: one TorchScript module averaging its members' probabilities."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from training.__main__ import main
from training.artifacts import load_artifact
from training.data import Split
from training.ensemble import Ensemble, train_ensemble
from training.ensemble_spec import ensemble_spec, member_seed
from training.fit import STOP, FitResult, Step
from training.recipes import Preset
from training.specs import Family

Fitted = dict[Family, tuple[Preset, nn.Module, FitResult]]


def _roundtrip(module: nn.Module) -> torch.jit.ScriptModule:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(module), buffer)
    buffer.seek(0)
    return torch.jit.load(buffer)  # type: ignore[no-untyped-call]  # torch ships it untyped


def test_exported_ensemble_gives_the_mean_of_its_members_probabilities(
    fitted: Fitted, split: Split
) -> None:
    """softmax of the scripted, saved and reloaded ensemble = mean of the members' softmax."""
    members = [copy.deepcopy(fitted[f][1]).eval() for f in ("cnn", "fnn", "logistic")]
    with torch.inference_mode():
        expected = torch.stack([torch.softmax(m(split.x_test), dim=1) for m in members]).mean(0)
        got = torch.softmax(_roundtrip(Ensemble(members))(split.x_test), dim=1)
    torch.testing.assert_close(got, expected)


def test_ensemble_temperature_divides_the_log_mean_probability(
    fitted: Fitted, split: Split
) -> None:
    """With temperature T the output is log(mean p) / T."""
    members = [copy.deepcopy(fitted[f][1]).eval() for f in ("cnn", "fnn")]
    with torch.inference_mode():
        plain = Ensemble(members)(split.x_test)
        scaled = _roundtrip(Ensemble(members, temperature=2.5))(split.x_test)
    torch.testing.assert_close(scaled, plain / 2.5)


def test_members_get_distinct_seeds_across_ensemble_seeds() -> None:
    """Member i of ensemble seed s has seed s * n + i: no two members of seeds 0-4 share one."""
    seeds = [m.recipe.seed for s in range(5) for m in ensemble_spec(["cnn", "fnn"], seed=s).members]
    assert seeds == [member_seed(s, i, 2) for s in range(5) for i in range(2)]
    assert len(set(seeds)) == 10


def test_train_ensemble_counts_steps_over_all_members(split: Split) -> None:
    """The callback sees steps 1..sum of the members' iterations, in order; the last accuracy
    point is the ensemble's and each member is listed with its seed."""
    spec = ensemble_spec(["fnn", "logistic"], seed=1, iterations=4)
    seen: list[int] = []
    model, result, members = train_ensemble(spec, split, lambda s: seen.append(s.iteration))
    assert seen == list(range(1, 9))
    assert len(result.loss_curve) == 8
    assert result.accuracy[-1].iteration == 8
    assert [(m["family"], m["seed"]) for m in members] == [("fnn", 2), ("logistic", 3)]
    assert result.test_accuracy == sum(
        int(p == y) for p, y in zip(model(split.x_test).argmax(1), split.y_test, strict=True)
    ) / len(split.y_test)


def test_stopping_an_ensemble_skips_the_remaining_members(split: Split) -> None:
    """STOP from the callback during the first member ends the fit: cancelled, one member."""

    def stop_at_two(step: Step) -> bool:
        return STOP if step.iteration == 2 else not STOP

    spec = ensemble_spec(["fnn", "fnn"], iterations=5)
    _, result, members = train_ensemble(spec, split, stop_at_two)
    assert result.cancelled
    assert len(members) == 1
    assert result.iterations == 2


def test_cli_exports_a_calibrated_ensemble_listing_its_members(tmp_path: Path) -> None:
    """``--family ensemble``: one module fitted on every training row, its manifest lists the
    members, records the out-of-fold held-out accuracy, the temperature, ECE and the outlier
    threshold, and a reliability diagram sits beside it."""
    argv = ["--family", "ensemble", "--members", "fnn", "logistic", "--iterations", "5"]
    folders = ["--models-dir", str(tmp_path), "--shipped-dir", str(tmp_path)]
    assert main([*argv, *folders, "--no-progress", "--seed", "2"]) == 0
    folder = tmp_path / "ensemble" / "1"
    manifest, module = load_artifact(folder)
    assert manifest.family == "ensemble"
    assert [m["family"] for m in manifest.members or []] == ["fnn", "logistic"]
    assert [m["seed"] for m in manifest.members or []] == [4, 5]
    assert manifest.validation is not None
    assert manifest.validation["from"] == "out_of_fold"
    assert manifest.validation["n_validation"] == 1437
    assert manifest.data_split["n_train"] == 1437
    assert (manifest.outlier or {})["threshold"] == pytest.approx(
        module.outlier_threshold, abs=1e-3
    )
    assert manifest.calibration is not None
    assert manifest.calibration["temperature"] > 0
    assert (folder / "reliability.png").read_bytes().startswith(b"\x89PNG")
    assert len(json.loads((folder / "curves.json").read_text())["loss"]) == 10
    probs = torch.softmax(module(torch.zeros(2, 64)), dim=1)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(2))
