"""TorchScript and ONNX export into ``models/`` (the contract: ``training.contract``).

A model version is a folder ``<models_dir>/<name>/<version>/`` holding ``model.pt``
(TorchScript), ``model.onnx`` (the same module as an ONNX graph, ``training.onnx_export``,
checked against ``model.pt`` on the test rows before anything is published),
``manifest.json`` (``training.contract.Manifest``), ``curves.json`` and ``curves.png``.
It is built in a temporary folder beside its final place and renamed into place, so a reader
never sees half a model; the rename also allocates the version number safely when several
processes publish at once. ``training.contract`` reads a version back and refuses a file
whose sha256 differs from its manifest's (``training.artifacts.load_artifact`` loads
``model.pt``). The module is scripted and timed by ``training.scripting``, the curves drawn
by ``training.curves``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from training.contract import (
    MANIFEST_FILE,
    MODEL_FILE,
    ArtifactError,
    Manifest,
    Metrics,
    next_version,
    sha256_file,
)
from training.curves import write_curves
from training.data import Split
from training.fit import FitResult
from training.onnx_export import write_onnx
from training.scripting import measure_forward, script_model

if TYPE_CHECKING:
    from training.calibration import CalibrationReport
    from training.outlier import OutlierStats

RELIABILITY_PNG = "reliability.png"


class Described(Protocol):
    """What a manifest records of an architecture or a recipe (``ModelSpec``, ``Recipe``,
    and the ensemble's ``EnsembleSpec`` and ``EnsembleRecipe``)."""

    def to_dict(self) -> dict[str, Any]: ...


class Architecture(Described, Protocol):
    """An architecture: a ``to_dict`` and the family it belongs to."""

    @property
    def family(self) -> str: ...


def export(
    model: nn.Module,
    *,
    spec: Architecture,
    recipe: Described,
    recipe_name: str,
    split: Split,
    result: FitResult,
    models_dir: Path,
    name: str,
    measure: bool = True,
    after_version: int = 0,
    calibration: CalibrationReport | None = None,
    members: list[dict[str, Any]] | None = None,
    outlier: OutlierStats | None = None,
) -> Manifest:
    """Script ``model`` and publish it as the next version of ``name`` under ``models_dir``
    (numbered after ``after_version`` too: the highest version kept in another folder), as
    ``model.pt`` and ``model.onnx`` (``OnnxParityError`` if the two differ on the test rows).

    ``calibration`` (its temperature already folded into ``model``) adds the manifest's
    ``validation`` and ``calibration`` entries and ``reliability.png``; ``members`` lists an
    ensemble's members; ``outlier`` wraps the module in ``training.outlier.OutlierScored``
    (the score and its threshold inside ``model.pt``) and adds the manifest's ``outlier``.

    Returns the written manifest. Safe against concurrent publishers of the same name: the
    final ``os.rename`` fails if another process took the version first, and the next
    number is tried.
    """
    model, outlier_entry = _with_outlier(model, outlier, split)
    scripted = script_model(model)
    model_dir = Path(models_dir) / name
    with _staging(model_dir) as staging:
        base = _describe(name, spec, recipe, recipe_name, split, result, members, outlier_entry)
        base.update(_save_module(staging, scripted, measure, split.x_test))
        title = f"{name} ({spec.family}, {recipe_name})"
        write_curves(staging, result, title)
        if calibration is not None:
            _add_calibration(staging, calibration, base, title)
        return _rename_into_place(staging, model_dir, after_version, base)


@contextlib.contextmanager
def _staging(model_dir: Path) -> Iterator[Path]:
    """A temporary folder beside the version folders in ``model_dir`` (made if missing),
    removed unless it was renamed into place."""
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{uuid.uuid4().hex[:8]}-", dir=model_dir))
    try:
        yield staging
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _describe(
    name: str,
    spec: Architecture,
    recipe: Described,
    recipe_name: str,
    split: Split,
    result: FitResult,
    members: list[dict[str, Any]] | None,
    outlier_entry: dict[str, Any] | None,
) -> dict[str, Any]:
    """The manifest's fields that describe the fit: what was fitted, how, on what, with what
    result."""
    return {
        "name": name,
        "family": spec.family,
        "architecture": spec.to_dict(),
        "hyperparameters": recipe.to_dict(),
        "recipe": recipe_name,
        "data_split": split.describe(),
        "metrics": _metrics(result, split),
        "members": members,
        "outlier": outlier_entry,
    }


def _save_module(
    staging: Path, scripted: torch.jit.ScriptModule, measure: bool, x_check: torch.Tensor
) -> dict[str, Any]:
    """Save ``model.pt`` and ``model.onnx`` (once it matches ``model.pt`` on the rows
    ``x_check``) into ``staging``; the manifest's fields about them (forward cost when
    ``measure``, torch version, time, sha256s)."""
    torch.jit.save(scripted, str(staging / MODEL_FILE))
    return {
        "onnx": write_onnx(scripted, staging, x_check),
        "forward_cost": measure_forward(scripted) if measure else None,
        "torch_version": torch.__version__,
        "created": datetime.now(UTC),
        "sha256": sha256_file(staging / MODEL_FILE),
    }


def _add_calibration(
    staging: Path, calibration: CalibrationReport, base: dict[str, Any], title: str
) -> None:
    """The manifest's ``validation`` and ``calibration`` entries into ``base``, and
    ``reliability.png`` into ``staging``."""
    from training.calibration import plot_reliability

    base.update(calibration.manifest_fields())
    plot_reliability(calibration, staging / RELIABILITY_PNG, title)


def _with_outlier(
    model: nn.Module, outlier: OutlierStats | None, split: Split
) -> tuple[nn.Module, dict[str, Any] | None]:
    """``model`` wrapped in ``OutlierScored`` and the manifest's ``outlier`` entry (with the
    test rows' flag rate), or ``model`` as it is and ``None`` without ``outlier``."""
    if outlier is None:
        return model, None
    from training.outlier import OutlierScored, flag_rate

    scored = OutlierScored(model, outlier)
    return scored, {**outlier.manifest_entry(), "test_flag_rate": flag_rate(scored, split)}


def _metrics(result: FitResult, split: Split) -> Metrics:
    """The manifest's ``metrics`` of the fit ``result``."""
    n_test = len(split.y_test)
    return Metrics(
        train_accuracy=result.train_accuracy,
        test_accuracy=result.test_accuracy,
        test_errors=round(n_test * (1 - result.test_accuracy)),
        n_test=n_test,
        final_loss=result.final_loss,
        fit_seconds=round(result.fit_seconds, 3),
        iterations=result.iterations,
    )


def _rename_into_place(
    staging: Path, model_dir: Path, after_version: int, base: dict[str, Any]
) -> Manifest:
    """Write the manifest of the next free version into ``staging`` and rename it to that
    version's folder; ``os.rename`` fails when another publisher took the number first, and
    the next is tried."""
    for _attempt in range(100):
        version = max(next_version(model_dir), after_version + 1)
        manifest = Manifest(version=version, **base)
        (staging / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2))
        try:
            os.rename(staging, model_dir / str(manifest.version))
        except OSError:  # another publisher took this version: try the next one
            continue
        return manifest
    raise ArtifactError(f"could not allocate a version folder under {model_dir}")
