"""What exists on disk: model versions under ``models_dir``, and each name's default version.

Layout (written by ``training.export``)::

    models/<name>/<version>/{model.pt, manifest.json, curves.json, curves.png}
    models/<name>/DEFAULT          optional: the pinned default version (else the newest)

New versions are published by ``training.export.export`` (atomic rename); this module only
reads them, and writes the ``DEFAULT`` pointer atomically (temp file + ``os.replace``).
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from training.export import ArtifactError, Manifest, load_artifact, read_manifest

log = logging.getLogger(__name__)

DEFAULT_FILE = "DEFAULT"


@dataclass(frozen=True)
class Artifact:
    """A version folder found on disk, with its (not yet verified) manifest."""

    folder: Path
    manifest: Manifest

    @property
    def key(self) -> tuple[str, int, str]:
        """Identity of the artifact: name, version and sha256."""
        return (self.manifest.name, self.manifest.version, self.manifest.sha256)


class ModelRepository:
    """Reads model folders under ``root``; never unpickles anything but TorchScript."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def scan(self) -> tuple[list[Artifact], dict[str, str]]:
        """Every ``<name>/<version>`` folder: the readable ones, and the reason for the others.

        A folder whose manifest is missing or invalid, or whose manifest's name and version
        disagree with its path, is reported in the second value (path -> reason).
        """
        found: list[Artifact] = []
        problems: dict[str, str] = {}
        if not self.root.is_dir():
            return found, problems
        for name_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if name_dir.name.startswith("."):
                continue
            for folder in sorted(p for p in name_dir.iterdir() if p.is_dir()):
                if not folder.name.isdigit():
                    continue  # staging folders of an export in progress, and the like
                try:
                    manifest = read_manifest(folder)
                except ArtifactError as exc:
                    problems[str(folder)] = str(exc)
                    continue
                if (manifest.name, str(manifest.version)) != (name_dir.name, folder.name):
                    problems[str(folder)] = (
                        f"manifest says {manifest.name}/{manifest.version}, "
                        f"folder is {name_dir.name}/{folder.name}"
                    )
                    continue
                found.append(Artifact(folder, manifest))
        return found, problems

    def load(
        self, artifact: Artifact, device: torch.device
    ) -> tuple[Manifest, torch.jit.ScriptModule]:
        """Verify the sha256 and ``torch.jit.load`` the module onto ``device``."""
        return load_artifact(artifact.folder, device)

    def pinned_default(self, name: str) -> int | None:
        """The version pinned as default for ``name``, if any."""
        path = self.root / name / DEFAULT_FILE
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            return None
        if not text.isdigit():
            log.warning("ignoring %s: expected a version number, got %r", path, text)
            return None
        return int(text)

    def set_default(self, name: str, version: int) -> None:
        """Pin ``version`` as the default of ``name`` (atomic: temp file + ``os.replace``)."""
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".default-", dir=folder)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{version}\n")
        os.replace(tmp, folder / DEFAULT_FILE)
