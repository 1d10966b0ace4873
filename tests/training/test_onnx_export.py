"""``model.onnx`` beside ``model.pt``: the shipped ones agree, an export whose graph differs is
refused, and ``python -m training.reexport`` adds it to an older version changing nothing else."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from training import onnx_export, reexport
from training.artifacts import load_artifact
from training.contract import (
    MANIFEST_FILE,
    ONNX_FILE,
    ArtifactError,
    onnx_bytes,
    read_manifest,
    sha256_file,
)
from training.data import Split
from training.digits import N_CLASSES
from training.ensemble_spec import ENSEMBLE
from training.export import export
from training.fit import FitResult
from training.models import build_model
from training.onnx_export import TOLERANCE, OnnxParityError
from training.recipes import Preset
from training.specs import FAMILIES, Family

SHIPPED = [*FAMILIES, ENSEMBLE]


def _both(folder: Path, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(probabilities, score) of ``model.pt`` through torch and of ``model.onnx`` through ONNX
    Runtime, each file sha256-checked against the manifest."""
    manifest, module = load_artifact(folder)
    session = ort.InferenceSession(onnx_bytes(folder, manifest))
    with torch.inference_mode():
        logits, score = module.forward_scored(x)
    onnx_p, onnx_s = session.run(None, {"input": x.numpy()})
    return torch.softmax(logits, dim=1).numpy(), score.numpy(), onnx_p, onnx_s


@pytest.mark.parametrize("family", SHIPPED)
def test_shipped_model_onnx_matches_model_pt_on_the_test_rows(
    shipped_models_dir: Path, split: Split, family: str
) -> None:
    """Both files are listed with their sha256; on the 360 test rows ONNX Runtime predicts the
    same digit on every row, probabilities within 1e-4, the same outlier score and threshold."""
    folder = shipped_models_dir / family / "1"
    manifest = read_manifest(folder)
    assert manifest.onnx is not None
    assert sha256_file(folder / "model.pt") == manifest.sha256
    assert sha256_file(folder / ONNX_FILE) == manifest.onnx.sha256
    assert (manifest.onnx.opset, manifest.onnx.outputs) == (17, ["probabilities", "score"])
    torch_p, torch_s, onnx_p, onnx_s = _both(folder, split.x_test)
    assert onnx_p.shape == (360, N_CLASSES)
    assert (onnx_p.argmax(1) == torch_p.argmax(1)).all()
    assert np.abs(onnx_p - torch_p).max() < TOLERANCE
    assert (np.abs(onnx_s - torch_s) / np.maximum(1.0, np.abs(torch_s))).max() < TOLERANCE
    recorded = manifest.onnx.parity
    assert recorded.rows == 360
    assert recorded.argmax_equal
    threshold = ort.InferenceSession(folder / ONNX_FILE).get_modelmeta().custom_metadata_map
    assert float(threshold["outlier_threshold"]) == load_artifact(folder)[1].outlier_threshold


def test_an_export_whose_onnx_graph_differs_publishes_nothing(
    tmp_path: Path,
    split: Split,
    fitted: dict[Family, tuple[Preset, nn.Module, FitResult]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A graph exported from other weights than ``model.pt`` fails the parity check: the
    export raises saying what differs, and no version folder appears."""
    preset, model, result = fitted["logistic"]
    torch.manual_seed(1)
    other = build_model(preset.spec)
    real = onnx_export.to_onnx
    monkeypatch.setattr(
        onnx_export, "to_onnx", lambda _module: real(torch.jit.script(other.eval()))
    )
    with pytest.raises(OnnxParityError, match=r"does not match model\.pt on 360 test rows"):
        export(
            model,
            spec=preset.spec,
            recipe=preset.recipe,
            recipe_name="default",
            split=split,
            result=result,
            models_dir=tmp_path,
            name="logistic",
            measure=False,
        )
    assert [p.name for p in (tmp_path / "logistic").iterdir()] == []


def test_parity_check_names_each_difference() -> None:
    """A probability off by 2e-4 or a score off by 1e-3 (relative) is refused."""
    exact = onnx_export.Parity(
        rows=3, argmax_equal=True, max_abs_diff_probabilities=0.0, max_rel_diff_score=0.0
    )
    onnx_export.check(exact)
    for change, words in (
        ({"argmax_equal": False}, "predicted digit differs"),
        ({"max_abs_diff_probabilities": 2e-4}, r"probabilities differ by 0\.0002"),
        ({"max_rel_diff_score": 1e-3}, r"outlier scores differ by 0\.001"),
    ):
        with pytest.raises(OnnxParityError, match=words):
            onnx_export.check(exact.model_copy(update=change))


def _as_before_onnx(source: Path, target: Path) -> dict[str, object]:
    """Copy ``source`` to ``target`` as it was before ONNX (no file, no manifest entry);
    the original manifest as JSON."""
    shutil.copytree(source, target)
    original: dict[str, object] = json.loads((source / MANIFEST_FILE).read_text())
    (target / ONNX_FILE).unlink()
    old = {k: v for k, v in original.items() if k != "onnx"}
    (target / MANIFEST_FILE).write_text(json.dumps(old, indent=2))
    return original


def test_reexport_adds_model_onnx_and_changes_nothing_else(
    tmp_path: Path, shipped_models_dir: Path
) -> None:
    """``python -m training.reexport`` on a version without ``model.onnx`` (its manifest,
    listing none, still loads) writes it from ``model.pt``: the manifest gains the ``onnx``
    entry, every other field is unchanged, ``model.pt`` too; a second run skips it."""
    folder = tmp_path / "models" / "fnn" / "1"
    original = _as_before_onnx(shipped_models_dir / "fnn" / "1", folder)
    assert read_manifest(folder).onnx is None
    with pytest.raises(ArtifactError, match=r"lists no model\.onnx"):
        onnx_bytes(folder, read_manifest(folder))
    pt = hashlib.sha256((folder / "model.pt").read_bytes()).hexdigest()
    assert reexport.main([str(tmp_path / "models")]) == 0
    after = json.loads((folder / MANIFEST_FILE).read_text())
    assert {k: v for k, v in after.items() if k != "onnx"} == {
        k: v for k, v in original.items() if k != "onnx"
    }
    assert after["onnx"]["sha256"] == sha256_file(folder / ONNX_FILE)
    assert after["onnx"]["parity"]["argmax_equal"] is True
    assert sha256_file(folder / "model.pt") == pt
    assert reexport.reexport(folder) is None  # listed already: skipped without --force
