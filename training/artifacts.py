"""Reading a published model version back: its manifest, its checked ``model.pt``, the
TorchScript module, its checked ``model.onnx`` (``training.export`` writes them)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from training.export import MANIFEST_FILE, MODEL_FILE, ArtifactError, Manifest, sha256_file
from training.onnx_export import ONNX_FILE


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


def load_module(
    folder: Path, manifest: Manifest, device: torch.device | str = "cpu"
) -> torch.jit.ScriptModule:
    """``model.pt`` once its sha256 matches ``manifest``, ``torch.jit.load``-ed onto ``device``."""
    path = verify(folder, manifest)
    try:
        module: torch.jit.ScriptModule = torch.jit.load(str(path), map_location=device)  # type: ignore[no-untyped-call]  # untyped in torch
    except RuntimeError as exc:
        raise ArtifactError(f"{path} is not a loadable TorchScript archive: {exc}") from None
    module.eval()
    return module


def load_artifact(
    folder: Path, device: torch.device | str = "cpu"
) -> tuple[Manifest, torch.jit.ScriptModule]:
    """Read the manifest, check the sha256 and ``torch.jit.load`` the module onto ``device``."""
    manifest = read_manifest(folder)
    return manifest, load_module(folder, manifest, device)
