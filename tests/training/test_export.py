"""TorchScript export: equivalence, the manifest's sha256 check and version allocation."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from torch import nn

from training.artifacts import load_artifact
from training.contract import ArtifactError, Manifest, read_manifest, sha256_file
from training.data import Split
from training.export import export
from training.fit import FitResult, train
from training.recipes import LECTURE, Preset
from training.specs import FAMILIES, Family

Fitted = dict[Family, tuple[Preset, nn.Module, FitResult]]


def _publish(fitted: Fitted, family: Family, split: Split, models_dir: Path) -> Manifest:
    chosen, model, result = fitted[family]
    return export(
        model,
        spec=chosen.spec,
        recipe=chosen.recipe,
        recipe_name="default",
        split=split,
        result=result,
        models_dir=models_dir,
        name=family,
        measure=False,
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_scripted_and_reloaded_models_give_the_eager_logits(
    fitted: Fitted, split: Split, family: Family
) -> None:
    """Eager, scripted and saved-then-loaded modules agree on the 360 test rows."""
    _, model, _ = fitted[family]
    model.eval()
    scripted = torch.jit.script(model)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    reloaded = torch.jit.load(buffer)
    with torch.inference_mode():
        eager = model(split.x_test)
        torch.testing.assert_close(scripted(split.x_test), eager)
        torch.testing.assert_close(reloaded(split.x_test), eager)


@pytest.mark.parametrize("family", FAMILIES)
def test_exported_artifact_reloads_with_the_same_logits_and_input_scale(
    fitted: Fitted, split: Split, family: Family, tmp_path: Path
) -> None:
    """A published version loads back (sha256 checked) and gives the eager logits on raw pixels."""
    manifest = _publish(fitted, family, split, tmp_path)
    _, model, result = fitted[family]
    loaded_manifest, module = load_artifact(tmp_path / family / "1")
    assert loaded_manifest == manifest
    assert manifest.architecture["input_scale"] == pytest.approx(1 / 16)
    assert manifest.metrics.test_accuracy == result.test_accuracy
    with torch.inference_mode():
        torch.testing.assert_close(module(split.x_test), model.eval()(split.x_test))
    for name in ("model.pt", "manifest.json", "curves.json", "curves.png"):
        assert (tmp_path / family / "1" / name).is_file()


def test_unscaled_lecture_model_round_trips(split: Split, tmp_path: Path) -> None:
    """The lecture's CNN (no input scale) also survives export and reload unchanged."""
    chosen = LECTURE["cnn"]
    model, result = train(chosen.spec, split, chosen.recipe.with_overrides(iterations=5))
    export(
        model,
        spec=chosen.spec,
        recipe=chosen.recipe,
        recipe_name="lecture",
        split=split,
        result=result,
        models_dir=tmp_path,
        name="cnn-lecture",
        measure=False,
    )
    _, module = load_artifact(tmp_path / "cnn-lecture" / "1")
    with torch.inference_mode():
        torch.testing.assert_close(module(split.x_test), model(split.x_test))


def test_load_artifact_refuses_a_tampered_model_pt(
    fitted: Fitted, split: Split, tmp_path: Path
) -> None:
    """Changing one byte of model.pt makes loading fail with ArtifactError naming sha256."""
    _publish(fitted, "logistic", split, tmp_path)
    path = tmp_path / "logistic" / "1" / "model.pt"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256"):
        load_artifact(path.parent)


def test_read_manifest_refuses_a_missing_or_broken_manifest(tmp_path: Path) -> None:
    """A folder without a valid manifest.json is an ArtifactError, not a crash."""
    with pytest.raises(ArtifactError, match="missing"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not a valid manifest"):
        read_manifest(tmp_path)


def test_successive_exports_get_versions_1_then_2(
    fitted: Fitted, split: Split, tmp_path: Path
) -> None:
    """Publishing the same name twice writes versions 1 and 2, each with its own sha256."""
    first = _publish(fitted, "fnn", split, tmp_path)
    second = _publish(fitted, "fnn", split, tmp_path)
    assert (first.version, second.version) == (1, 2)
    assert sha256_file(tmp_path / "fnn" / "2" / "model.pt") == second.sha256
    assert not [p for p in (tmp_path / "fnn").iterdir() if p.name.startswith(".staging")]


def test_concurrent_exports_get_distinct_versions(
    fitted: Fitted, split: Split, tmp_path: Path
) -> None:
    """Four publishers racing on one name end with versions 1 to 4, none overwritten."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        manifests = list(pool.map(lambda _: _publish(fitted, "cnn", split, tmp_path), range(4)))
    assert sorted(m.version for m in manifests) == [1, 2, 3, 4]
    for m in manifests:
        assert read_manifest(tmp_path / "cnn" / str(m.version)) == m
