"""What is loaded in memory: name -> version -> ``LoadedModel``. Knows nothing about HTTP.

``refresh()`` loads every version on disk it has not loaded yet (sha256 checked, warm-up
forward run), so new versions published by any process become servable without a restart.
A refused artifact is logged and listed in ``failures`` while the others keep serving.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from service.errors import ModelNotFound, VersionNotFound
from service.repository import Artifact, ModelRepository
from training.data import N_FEATURES
from training.export import ArtifactError, Manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """One model version on its device, ready to answer."""

    manifest: Manifest
    module: torch.jit.ScriptModule
    device: torch.device
    folder: Path

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> int:
        return self.manifest.version

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (N, 10) on the CPU for a float32 (N, 64) batch."""
        with torch.inference_mode():
            logits = self.module(x.to(self.device, non_blocking=True))
            return torch.softmax(logits, dim=1).cpu()

    def warm_up(self) -> None:
        """Run a few forwards so the first request does not pay for lazy initialisation."""
        for rows in (1, 8, 1):
            self.predict_proba(torch.zeros(rows, N_FEATURES))


class ModelRegistry:
    """Loaded models by name and version; the default of a name is its pinned or newest."""

    def __init__(self, repository: ModelRepository, device: torch.device) -> None:
        self.repository = repository
        self.device = device
        self._models: dict[str, dict[int, LoadedModel]] = {}
        self._defaults: dict[str, int] = {}
        self._seen: set[tuple[str, int, str]] = set()
        self._failed: dict[tuple[str, int, str], str] = {}
        #: Model folders that could not be served (path -> reason), as of the last refresh.
        self.failures: dict[str, str] = {}
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()

    def refresh(self) -> list[LoadedModel]:
        """Load the versions on disk not loaded yet; returns those newly loaded.

        Blocking (file reads, ``torch.jit.load``, warm-up): call it from a thread, not the
        event loop. Concurrent calls are serialised. An artifact that failed is not retried
        until its manifest changes.
        """
        with self._refresh_lock:
            artifacts, problems = self.repository.scan()
            for path, reason in problems.items():
                if path not in self.failures:
                    log.error("refusing model folder %s: %s", path, reason)
            load_failures = {
                str(a.folder): self._failed[a.key] for a in artifacts if a.key in self._failed
            }
            loaded = []
            for artifact in artifacts:
                if artifact.key in self._seen:
                    continue
                self._seen.add(artifact.key)
                model = self._load(artifact)
                if model is None:
                    load_failures[str(artifact.folder)] = self._failed[artifact.key]
                else:
                    loaded.append(model)
            with self._lock:
                models = {name: dict(versions) for name, versions in self._models.items()}
                for model in loaded:
                    models.setdefault(model.name, {})[model.version] = model
                defaults = {}
                for name, versions in models.items():
                    pinned = self.repository.pinned_default(name)
                    defaults[name] = pinned if pinned in versions else max(versions)
                self._models, self._defaults = models, defaults
                self.failures = {**problems, **load_failures}
            return loaded

    def _load(self, artifact: Artifact) -> LoadedModel | None:
        try:
            manifest, module = self.repository.load(artifact, self.device)
            model = LoadedModel(manifest, module, self.device, artifact.folder)
            model.warm_up()
        except (ArtifactError, RuntimeError) as exc:
            log.error("refusing model %s: %s", artifact.folder, exc)
            self._failed[artifact.key] = str(exc)
            return None
        log.info("loaded %s v%d on %s", model.name, model.version, self.device)
        return model

    def get(self, name: str, version: int | None = None) -> LoadedModel:
        """The model ``name`` at ``version`` (``None`` = its default version)."""
        with self._lock:
            versions = self._models.get(name)
            if versions is None:
                raise ModelNotFound(
                    f"no model named {name!r}",
                    expected=f"one of: {', '.join(sorted(self._models)) or '(none loaded)'}",
                )
            chosen = self._defaults[name] if version is None else version
            model = versions.get(chosen)
            if model is None:
                raise VersionNotFound(
                    f"model {name!r} has no version {chosen}",
                    expected=f"one of: {', '.join(str(v) for v in sorted(versions))}",
                )
            return model

    def names(self) -> list[str]:
        """Names of the loaded models, sorted."""
        with self._lock:
            return sorted(self._models)

    def versions(self, name: str) -> list[LoadedModel]:
        """Every loaded version of ``name``, oldest first (``ModelNotFound`` if none)."""
        with self._lock:
            if name not in self._models:
                raise ModelNotFound(
                    f"no model named {name!r}",
                    expected=f"one of: {', '.join(sorted(self._models)) or '(none loaded)'}",
                )
            return [self._models[name][v] for v in sorted(self._models[name])]

    def default_version(self, name: str) -> int:
        """The version ``get(name)`` answers with."""
        return self.get(name).version

    def set_default(self, name: str, version: int) -> None:
        """Pin ``version`` as the default of ``name``, on disk and in memory."""
        self.get(name, version)
        self.repository.set_default(name, version)
        with self._lock:
            self._defaults = {**self._defaults, name: version}

    def __len__(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._models.values())
