"""Loading a published version's TorchScript module: ``model.pt`` checked against its manifest
(``training.contract`` reads and checks the files without torch)."""

from __future__ import annotations

from pathlib import Path

import torch

from training.contract import ArtifactError, Manifest, read_manifest, verify


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
