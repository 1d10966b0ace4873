"""The artifact contract of ``models/``, without torch: what a version folder holds and how
a reader checks it.

A version is a folder ``<models_dir>/<name>/<version>/`` holding ``model.pt`` (TorchScript),
``model.onnx`` (the same module as an ONNX graph), ``manifest.json`` (the ``Manifest``),
``curves.json`` and ``curves.png``; ``training.export`` writes it, the service reads it.
``read_manifest`` parses the manifest, ``verify`` / ``onnx_bytes`` check a file against the
sha256 its manifest records (``ArtifactError`` on any mismatch). The serving process imports
this module and never torch (issue 24): TorchScript is loaded by ``training.artifacts``.

The ONNX graph's interface: one input ``input`` float32 (batch, 64), two outputs
``probabilities`` (batch, 10) and ``score`` (batch,), the outlier threshold in the model's
metadata under ``outlier_threshold`` (``training.onnx_export``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from training.digits import N_CLASSES, N_FEATURES, PIXEL_MAX, PIXEL_MIN

MODEL_FILE = "model.pt"
ONNX_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
MANIFEST_SCHEMA = 1
INPUT_NAME = "input"
OUTPUT_NAMES = ("probabilities", "score")
THRESHOLD_KEY = "outlier_threshold"


class ArtifactError(Exception):
    """A model folder that cannot be served: missing files, bad manifest, sha256 mismatch."""


class ForwardCost(BaseModel):
    """In-process forward time of the TorchScript module, measured at export."""

    batch1_us: float
    per_row_batch256_us: float
    torch_threads: int


class Parity(BaseModel):
    """The comparison of the two files on the test rows, recorded in the manifest."""

    rows: int
    argmax_equal: bool
    max_abs_diff_probabilities: float
    max_rel_diff_score: float


class OnnxEntry(BaseModel):
    """The manifest's ``onnx`` entry: the file, its sha256 and how it was made and checked."""

    file: str = ONNX_FILE
    sha256: str
    opset: int
    inputs: list[str]
    outputs: list[str]
    exporter: str
    onnx_version: str
    onnxruntime_version: str
    parity: Parity


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
    #: sha256 of ``model.pt``.
    sha256: str
    #: ``model.onnx``: its sha256, opset, outputs and the parity check against ``model.pt``
    #: at export; ``None`` for a version exported before ONNX (served by TorchScript).
    onnx: OnnxEntry | None = None


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def next_version(model_dir: Path) -> int:
    """One more than the highest numeric version folder (1 when there is none)."""
    versions = [int(p.name) for p in model_dir.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


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


def onnx_bytes(folder: Path, manifest: Manifest) -> bytes:
    """The bytes of ``model.onnx`` once their sha256 matches the manifest's ``onnx`` entry
    (read once: what is checked is what is loaded); ``ArtifactError`` if not, or if the
    manifest has no ``onnx`` entry (a version exported before ONNX)."""
    path = Path(folder) / ONNX_FILE
    if manifest.onnx is None:
        raise ArtifactError(
            f"{Path(folder) / MANIFEST_FILE} lists no {ONNX_FILE}: a version exported before "
            "ONNX (`python -m training.reexport` adds it; DIGITS_RUNTIME=auto serves it with "
            "TorchScript)"
        )
    try:
        graph = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing") from None
    actual = hashlib.sha256(graph).hexdigest()
    if actual != manifest.onnx.sha256:
        raise ArtifactError(
            f"{path} has sha256 {actual[:12]}..., its manifest says "
            f"{manifest.onnx.sha256[:12]}...; refusing a modified or corrupt artifact"
        )
    return graph


def verify_all(folder: Path, manifest: Manifest) -> None:
    """``ArtifactError`` unless ``model.pt`` and, where the manifest lists it, ``model.onnx``
    match their sha256: a version with either file modified is refused whichever runtime
    would serve it."""
    verify(folder, manifest)
    if manifest.onnx is not None:
        onnx_bytes(folder, manifest)
