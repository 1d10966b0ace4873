"""Where a job's fitted model becomes a version: the runtime folder, or a version store.

Without a store the version is exported into the runtime folder, numbered after every version
of both folders. With one (``s3://...``) the runtime folder is this process's cache of it: the
store's versions are pulled in, the next number is claimed by a conditional write, the model
is exported into a hidden folder, uploaded (``manifest.json`` last) and renamed into place
(docs/deployment.md, "Publishing").
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from service.inference.artifact_store import StoreError, VersionStore
from service.inference.repository import ModelRepository
from training.contract import Manifest
from training.pipeline import Fitted

log = logging.getLogger(__name__)


def publish(
    fitted: Fitted,
    repository: ModelRepository,
    name: str,
    recipe: str,
    store: VersionStore | None = None,
) -> Manifest:
    """Publish ``fitted`` as the next version of ``name``; returns its manifest."""
    cache = repository.writable  # the runtime folder: never the shipped one
    if store is None:
        return fitted.export(cache, name, recipe, after_version=repository.highest_version(name))
    if repository.runtime is None:
        raise ValueError("a version store needs versions_dir for its local cache")
    listing = store.pull(cache)
    version = store.claim(name, max(repository.highest_version(name), listing.highest(name)))
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".publish-", dir=cache))
    try:
        manifest = fitted.export(staging, name, recipe, after_version=version - 1)
        folder = staging / name / str(manifest.version)
        if manifest.version != version:  # the staging folder is new: cannot happen
            raise StoreError(f"exported version {manifest.version}, claimed {version}")
        store.upload(folder, name, version)
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
