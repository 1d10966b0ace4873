"""Where a job's fitted model becomes a version: the runtime folder, or a version store.

Without a store (``DIGITS_VERSIONS_URL`` unset) the version is exported into the runtime
folder, numbered after every version of both folders (``training.export``'s rename makes the
number safe between processes sharing the folder).

With a store (``s3://...``), the runtime folder is this process's cache of it:

1. ``pull``: the versions published by others come into the cache (the promotion gate
   measures production from it, and the numbering sees them);
2. ``claim``: the first number after every version of the shipped folder, the cache and the
   store (claims included) is taken by a conditional write: two workers never get one
   number;
3. the model is exported into a hidden folder of the cache (never scanned: a replica
   sharing the cache cannot serve it before it is published);
4. ``upload``: every file, ``manifest.json`` last: the version exists for readers only once
   whole;
5. the folder is renamed into the cache.

A store that cannot be reached fails the job with ``StoreError`` saying what failed; an
upload cut short leaves files without a manifest, which no reader serves, and a claimed
number that is never published again.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from service.inference.artifact_store import StoreError, VersionStore
from service.inference.repository import ModelRepository
from training.contract import Manifest
from training.pipeline import Fitted

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Destination:
    """Where a worker's versions go: the repository (the runtime folder) and the store."""

    repository: ModelRepository
    store: VersionStore | None = None

    @classmethod
    def of(
        cls, models_dir: str | Path, versions_dir: str | Path | None, versions_url: str | None
    ) -> Destination:
        runtime = None if versions_dir is None else Path(versions_dir)
        store = VersionStore(versions_url) if versions_url else None
        if store is not None and runtime is None:  # never the shipped folder
            raise ValueError("a version store needs versions_dir for its local cache")
        return cls(ModelRepository(Path(models_dir), runtime), store)

    def export(self, fitted: Fitted, name: str, recipe: str) -> Manifest:
        return export_version(fitted, self.repository, name, recipe, self.store)


def export_version(
    fitted: Fitted,
    repository: ModelRepository,
    name: str,
    recipe: str,
    store: VersionStore | None = None,
    on_file: Callable[[str], None] | None = None,
) -> Manifest:
    """Publish ``fitted`` as the next version of ``name``; returns its manifest. ``on_file``:
    called after each file uploaded to the store (tests cut the store there)."""
    cache = repository.writable  # the runtime folder: never the shipped one
    if store is None:
        return fitted.export(cache, name, recipe, after_version=repository.highest_version(name))
    listing = store.pull(cache)
    version = store.claim(name, max(repository.highest_version(name), listing.highest(name)))
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".publish-", dir=cache))
    try:
        manifest = fitted.export(staging, name, recipe, after_version=version - 1)
        folder = staging / name / str(manifest.version)
        if manifest.version != version:  # the staging folder is new: cannot happen
            raise StoreError(f"exported version {manifest.version}, claimed {version}")
        store.upload(folder, name, version, on_file)
        log.info("published %s v%d to %s", name, version, store.url)
        _into_place(folder, cache / name / str(version))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _into_place(folder: Path, target: Path) -> None:
    """Rename the published ``folder`` into the cache, unless a replica sharing the cache
    copied it from the store first (the same files)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(folder, target)
    except OSError:
        if not target.is_dir():
            raise
