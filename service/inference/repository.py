"""What exists on disk: model versions in the shipped folder and the runtime folder, and
each name's pinned default.

Layout (written by ``training.export``)::

    models/<name>/<version>/{model.pt, model.onnx, manifest.json, curves.*}   shipped, read-only
    var/models/<name>/<version>/...                               made at run time (jobs)
    var/models/<name>/DEFAULT                                     optional: the pinned default

The two folders form one set of versions (numbers never repeat across them: a new version
is numbered after every version in both). Versions made at run time never touch the
shipped folder, so a checkout or an image stays as it was shipped. Without a pin, a model's
default is its oldest version: a new version never serves by default as a side effect of
being made, only by being pinned (``promote``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from service.inference.runtime import Runtime, RuntimeSetting, open_runtime
from training.contract import (
    MANIFEST_FILE,
    MODEL_FILE,
    ONNX_FILE,
    ArtifactError,
    Manifest,
    read_manifest,
)

log = logging.getLogger(__name__)

DEFAULT_FILE = "DEFAULT"


@dataclass(frozen=True)
class Artifact:
    """A version folder found on disk, with its (not yet verified) manifest."""

    folder: Path
    manifest: Manifest
    #: Size and mtime of the model files and the manifest: a change means "look again".
    stamp: tuple[int, ...]

    @property
    def key(self) -> tuple[str, int]:
        return (self.manifest.name, self.manifest.version)


@dataclass(frozen=True)
class Scan:
    """One look at the disk: readable artifacts and the reason for each unreadable folder."""

    artifacts: list[Artifact]
    problems: dict[str, str]
    #: Per name, the version numbers present on disk, readable or not.
    versions: dict[str, set[int]]
    missing_root: str | None = None


class ModelRepository:
    """Reads model folders under ``shipped`` and ``runtime``; never unpickles anything but
    TorchScript. New versions go to ``runtime`` (``shipped`` when it is ``None``). Versions
    load in the runtime ``serve_with`` picks (``service.inference.runtime``), ONNX Runtime
    sessions with ``threads`` intra-op threads."""

    def __init__(
        self,
        shipped: Path,
        runtime: Path | None = None,
        *,
        serve_with: RuntimeSetting = "auto",
        threads: int = 1,
    ) -> None:
        self.shipped = Path(shipped)
        self.runtime = Path(runtime) if runtime is not None else None
        self.serve_with: RuntimeSetting = serve_with
        self.threads = threads

    @property
    def writable(self) -> Path:
        """Where new versions are written."""
        return self.runtime if self.runtime is not None else self.shipped

    @property
    def roots(self) -> list[Path]:
        return [self.shipped] if self.runtime is None else [self.shipped, self.runtime]

    def scan(self) -> Scan:
        """Every ``<name>/<version>`` folder of both roots.

        A folder whose manifest is missing or invalid, whose manifest disagrees with its path,
        or whose version also exists in the other root, is reported in ``problems``.
        """
        found: dict[tuple[str, int], Artifact] = {}
        problems: dict[str, str] = {}
        versions: dict[str, set[int]] = {}
        for root in self.roots:
            for folder in _version_folders(root):
                name, version = folder.parent.name, int(folder.name)
                versions.setdefault(name, set()).add(version)
                try:
                    artifact = _read(folder)
                except ArtifactError as exc:
                    problems[str(folder)] = str(exc)
                    continue
                other = found.get(artifact.key)
                if other is not None:
                    problems[str(folder)] = f"version {version} of {name} is also {other.folder}"
                    continue
                found[artifact.key] = artifact
        missing = None
        if not self.shipped.is_dir():
            missing = f"the models folder {self.shipped} does not exist"
        return Scan(list(found.values()), problems, versions, missing)

    def load(self, artifact: Artifact, device: str) -> tuple[Manifest, Runtime]:
        """Load ``artifact`` in its runtime on ``device``, the file it reads sha256-checked."""
        return open_runtime(artifact.folder, self.serve_with, device, self.threads)

    def pinned_default(self, name: str) -> int | None:
        """The version a legacy ``DEFAULT`` file pins for ``name``, if any (runtime pin first).

        Read once per model, when it has no ``production`` alias yet: the pin becomes that
        alias (``service/inference/registry.py``); nothing writes pins any more."""
        for root in reversed(self.roots):
            path = root / name / DEFAULT_FILE
            try:
                text = path.read_text().strip()
            except FileNotFoundError:
                continue
            if not text.isdigit():
                log.warning("ignoring %s: expected a version number, got %r", path, text)
                return None
            return int(text)
        return None

    def highest_version(self, name: str) -> int:
        """The highest version number of ``name`` in either root (0 when there is none)."""
        numbers = [int(f.name) for root in self.roots for f in _version_folders(root / name, 0)]
        return max(numbers, default=0)


def _version_folders(root: Path, depth: int = 1) -> list[Path]:
    """``root/<name>/<digits>`` folders (``depth`` 1) or ``root/<digits>`` (``depth`` 0)."""
    if not root.is_dir():
        return []
    parents = [root] if depth == 0 else [p for p in sorted(root.iterdir()) if p.is_dir()]
    return [
        folder
        for parent in parents
        if not parent.name.startswith(".")
        for folder in sorted(parent.iterdir())
        if folder.is_dir() and folder.name.isdigit()  # not staging folders of an export
    ]


def _read(folder: Path) -> Artifact:
    manifest = read_manifest(folder)
    if (manifest.name, str(manifest.version)) != (folder.parent.name, folder.name):
        raise ArtifactError(
            f"manifest says {manifest.name}/{manifest.version}, "
            f"folder is {folder.parent.name}/{folder.name}"
        )
    stamp: list[int] = []
    for file in (MODEL_FILE, ONNX_FILE, MANIFEST_FILE):
        try:
            stat = (folder / file).stat()
            stamp += [stat.st_size, stat.st_mtime_ns]
        except FileNotFoundError:
            stamp += [-1, -1]
    return Artifact(folder, manifest, tuple(stamp))
