"""TorchScript export and the artifact contract of ``models/``.

A model version is a folder ``<models_dir>/<name>/<version>/`` holding ``model.pt``
(TorchScript), ``manifest.json`` (the ``Manifest`` below), ``curves.json`` and ``curves.png``.
It is built in a temporary folder beside its final place and renamed into place, so a reader
never sees half a model; the rename also allocates the version number safely when several
processes publish at once. ``load_artifact`` refuses a ``model.pt`` whose sha256 differs from
its manifest's.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from training.data import N_CLASSES, N_FEATURES, PIXEL_MAX, PIXEL_MIN, Split
from training.fit import FitResult

if TYPE_CHECKING:
    from training.calibration import CalibrationReport
    from training.outlier import OutlierStats

MODEL_FILE = "model.pt"
MANIFEST_FILE = "manifest.json"
CURVES_JSON = "curves.json"
CURVES_PNG = "curves.png"
RELIABILITY_PNG = "reliability.png"
MANIFEST_SCHEMA = 1


class Described(Protocol):
    """What a manifest records of an architecture or a recipe (``ModelSpec``, ``Recipe``,
    and the ensemble's ``EnsembleSpec`` and ``EnsembleRecipe``)."""

    def to_dict(self) -> dict[str, Any]: ...


class Architecture(Described, Protocol):
    """An architecture: a ``to_dict`` and the family it belongs to."""

    @property
    def family(self) -> str: ...


class ArtifactError(Exception):
    """A model folder that cannot be served: missing files, bad manifest, sha256 mismatch."""


class InputSpec(BaseModel):
    """What the exported module takes: float32 (N, 64) of raw pixel values in 0..16."""

    shape: list[int | None] = Field(default_factory=lambda: [None, N_FEATURES])
    dtype: str = "float32"
    min: float = PIXEL_MIN
    max: float = PIXEL_MAX
    description: str = "raw sklearn load_digits pixels: 8x8 image flattened row by row, 0..16"


class Metrics(BaseModel):
    """Figures measured at export time on the split the model was fitted on."""

    train_accuracy: float
    test_accuracy: float
    test_errors: int
    n_test: int
    final_loss: float
    fit_seconds: float
    iterations: int


class ForwardCost(BaseModel):
    """In-process forward time of the TorchScript module, measured at export."""

    batch1_us: float
    per_row_batch256_us: float
    torch_threads: int


class Manifest(BaseModel):
    """The metadata file of one model version (``manifest.json``)."""

    model_config = ConfigDict(extra="ignore")

    schema_version: int = MANIFEST_SCHEMA
    name: str
    version: int
    family: str
    architecture: dict[str, Any]
    hyperparameters: dict[str, Any]
    recipe: str
    data_split: dict[str, Any]
    metrics: Metrics
    input: InputSpec = Field(default_factory=InputSpec)
    labels: list[int] = Field(default_factory=lambda: list(range(N_CLASSES)))
    forward_cost: ForwardCost | None = None
    #: The validation rows carved from the training rows (``training.data.carve_validation``)
    #: and the model's accuracy on them; absent for a model fitted on every training row.
    validation: dict[str, Any] | None = None
    #: Temperature scaling fitted on the out-of-fold logits of the training rows and folded
    #: into ``model.pt``: the temperature and the ECE/NLL/Brier/confidence figures before and
    #: after it on the out-of-fold and test rows (older versions: on 216 validation rows).
    calibration: dict[str, Any] | None = None
    #: The outlier score inside ``model.pt`` (``training.outlier``): method, threshold, the
    #: held-out and test flag rates; ``None`` for a version exported without one.
    outlier: dict[str, Any] | None = None
    #: ``ensemble`` only: each member's family, seed, architecture, recipe and accuracies.
    members: list[dict[str, Any]] | None = None
    torch_version: str
    created: datetime
    sha256: str


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def script_model(model: nn.Module) -> torch.jit.ScriptModule:
    """``torch.jit.script`` the eval-mode model and check the saved-and-reloaded module gives
    the same logits as the eager one."""
    model.eval()
    scripted = torch.jit.script(model)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    reloaded = torch.jit.load(buffer)  # type: ignore[no-untyped-call]  # torch ships it untyped
    probe = torch.arange(3 * N_FEATURES, dtype=torch.float32).reshape(3, N_FEATURES) % 17
    with torch.inference_mode():
        torch.testing.assert_close(reloaded(probe), model(probe))
    return scripted


def measure_forward(
    module: torch.jit.ScriptModule, repeats: int = 200, blocks: int = 5
) -> ForwardCost:
    """Batch 1 and batch 256 forward times after warm-up: the mean call time of the fastest
    of ``blocks`` timed blocks, so that other work on a shared machine inflates it less."""
    costs = []
    for batch, reps in ((1, repeats), (256, max(repeats // 10, 5))):
        x = torch.rand(batch, N_FEATURES) * PIXEL_MAX
        best = math.inf
        with torch.inference_mode():
            for _ in range(5):
                module(x)
            for _ in range(blocks):
                start = time.perf_counter()
                for _ in range(reps):
                    module(x)
                best = min(best, (time.perf_counter() - start) / reps * 1e6)
        costs.append(best)
    return ForwardCost(
        batch1_us=round(costs[0], 2),
        per_row_batch256_us=round(costs[1] / 256, 3),
        torch_threads=torch.get_num_threads(),
    )


def next_version(model_dir: Path) -> int:
    """One more than the highest numeric version folder (1 when there is none)."""
    versions = [int(p.name) for p in model_dir.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def _write_curves(folder: Path, result: FitResult, title: str) -> None:
    accuracy = [
        {"iteration": p.iteration, "train": p.train, "test": p.test} for p in result.accuracy
    ]
    (folder / CURVES_JSON).write_text(json.dumps({"loss": result.loss_curve, "accuracy": accuracy}))
    plot_curves(result.loss_curve, accuracy, folder / CURVES_PNG, title)


def plot_curves(
    loss: list[float], accuracy: list[dict[str, float]], path: Path | io.BytesIO, title: str
) -> None:
    """Draw the loss curve and the train/test accuracy curve side by side (PNG or SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(range(1, len(loss) + 1), loss, linewidth=1)
    ax_loss.set(
        title="loss", xlabel="iteration", yscale="log" if loss and min(loss) > 0 else "linear"
    )
    if accuracy:
        its = [p["iteration"] for p in accuracy]
        ax_acc.plot(its, [p["train"] for p in accuracy], label="train")
        ax_acc.plot(its, [p["test"] for p in accuracy], label="test")
        ax_acc.legend(loc="lower right")
    ax_acc.set(title="accuracy", xlabel="iteration")
    fig.suptitle(title)
    fmt = "svg" if isinstance(path, Path) and path.suffix == ".svg" else "png"
    fig.savefig(path, format=fmt, dpi=100)


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
    (numbered after ``after_version`` too: the highest version kept in another folder).

    ``calibration`` (its temperature already folded into ``model``) adds the manifest's
    ``validation`` and ``calibration`` entries and ``reliability.png``; ``members`` lists an
    ensemble's members; ``outlier`` wraps the module in ``training.outlier.OutlierScored``
    (the score and its threshold inside ``model.pt``) and adds the manifest's ``outlier``.

    Returns the written manifest. Safe against concurrent publishers of the same name: the
    final ``os.rename`` fails if another process took the version first, and the next
    number is tried.
    """
    outlier_entry = None
    if outlier is not None:
        from training.outlier import OutlierScored

        model = OutlierScored(model, outlier)
        outlier_entry = {**outlier.manifest_entry(), "test_flag_rate": _flag_rate(model, split)}
    scripted = script_model(model)
    model_dir = Path(models_dir) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{uuid.uuid4().hex[:8]}-", dir=model_dir))
    try:
        torch.jit.save(scripted, str(staging / MODEL_FILE))
        n_test = len(split.y_test)
        metrics = Metrics(
            train_accuracy=result.train_accuracy,
            test_accuracy=result.test_accuracy,
            test_errors=round(n_test * (1 - result.test_accuracy)),
            n_test=n_test,
            final_loss=result.final_loss,
            fit_seconds=round(result.fit_seconds, 3),
            iterations=result.iterations,
        )
        base: dict[str, Any] = {
            "name": name,
            "family": spec.family,
            "architecture": spec.to_dict(),
            "hyperparameters": recipe.to_dict(),
            "recipe": recipe_name,
            "data_split": split.describe(),
            "metrics": metrics,
            "forward_cost": measure_forward(scripted) if measure else None,
            "torch_version": torch.__version__,
            "created": datetime.now(UTC),
            "sha256": sha256_file(staging / MODEL_FILE),
            "members": members,
            "outlier": outlier_entry,
        }
        title = f"{name} ({spec.family}, {recipe_name})"
        _write_curves(staging, result, title)
        if calibration is not None:
            from training.calibration import plot_reliability

            base.update(calibration.manifest_fields())
            plot_reliability(calibration, staging / RELIABILITY_PNG, title)
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
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _flag_rate(model: nn.Module, split: Split) -> float:
    """Share of the test rows whose outlier score is over the threshold."""
    with torch.inference_mode():
        scores = model.outlier_score(split.x_test)  # type: ignore[operator]  # OutlierScored
    return round(float((scores > model.outlier_threshold).double().mean()), 4)


def read_manifest(folder: Path) -> Manifest:
    """Parse ``folder/manifest.json``; ``ArtifactError`` saying what is wrong otherwise."""
    path = Path(folder) / MANIFEST_FILE
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing") from None
    except ValueError as exc:
        raise ArtifactError(f"{path} is not a valid manifest: {exc}") from None


def verify(folder: Path, manifest: Manifest) -> Path:
    """Path of ``model.pt`` once its sha256 matches the manifest; ``ArtifactError`` if not."""
    path = Path(folder) / MODEL_FILE
    if not path.is_file():
        raise ArtifactError(f"{path} is missing")
    actual = sha256_file(path)
    if actual != manifest.sha256:
        raise ArtifactError(
            f"{path} has sha256 {actual[:12]}..., its manifest says {manifest.sha256[:12]}...; "
            "refusing a modified or corrupt artifact"
        )
    return path


def load_artifact(
    folder: Path, device: torch.device | str = "cpu"
) -> tuple[Manifest, torch.jit.ScriptModule]:
    """Read the manifest, check the sha256 and ``torch.jit.load`` the module onto ``device``."""
    manifest = read_manifest(folder)
    path = verify(folder, manifest)
    try:
        module = torch.jit.load(str(path), map_location=device)  # type: ignore[no-untyped-call]  # untyped in torch
    except RuntimeError as exc:
        raise ArtifactError(f"{path} is not a loadable TorchScript archive: {exc}") from None
    module.eval()
    return manifest, module
