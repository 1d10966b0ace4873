"""Model versions in an S3-compatible bucket (``DIGITS_VERSIONS_URL=s3://bucket/prefix``),
with ``DIGITS_VERSIONS_DIR`` as each process's local cache of them.

Layout in the bucket (the layout of a versions folder, under ``prefix``)::

    <prefix>/<name>/<version>/.claim           taken by the publisher of that number (empty)
    <prefix>/<name>/<version>/model.pt, curves.*, ...
    <prefix>/<name>/<version>/manifest.json    written last: the version exists from then on

A publisher (``service/jobs/publish.py``) first claims a number with a conditional write of
``.claim`` (``If-None-Match: *``: of two workers claiming one number, the store refuses the
second, which takes the next), then uploads every file and ``manifest.json`` last (also
conditional). A reader (``pull``, at every registry refresh) lists the bucket once (paginated
ListObjectsV2), downloads each version whose manifest exists and that its cache lacks into a
hidden folder of the cache, and renames it into place: the folder scan never sees half a
version. The sha256 of ``model.pt`` is checked by the registry's load, as for any folder.

boto3 is imported at the first use (it costs ~0.3 s): a service without the setting never
loads it. Endpoint, credentials and region come from the usual AWS variables and files
(``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.contract import MANIFEST_FILE

log = logging.getLogger(__name__)

CLAIM_FILE = ".claim"
SCHEME = "s3://"
#: Short timeouts and one retry: a refresh waits on the listing, and an unreachable store
#: must degrade readiness within seconds, not stall the registry.
_CLIENT_OPTIONS: dict[str, Any] = {
    "connect_timeout": 2,
    "read_timeout": 10,
    "retries": {"max_attempts": 2, "mode": "standard"},
}


class StoreError(Exception):
    """The version store could not be read or written; the message says what and why."""


def is_store_url(url: str | None) -> bool:
    """Whether ``url`` names a bucket (``s3://...``) rather than a local folder."""
    return url is not None and url.startswith(SCHEME)


@dataclass
class Listing:
    """One listing of the bucket: per ``(name, version)``, its files and their sizes."""

    files: dict[tuple[str, int], dict[str, int]] = field(default_factory=dict)

    def published(self) -> list[tuple[str, int]]:
        """The versions whose manifest exists (a claim alone, or files without a manifest,
        is a publication in progress or one that failed: never served)."""
        return sorted(key for key, files in self.files.items() if MANIFEST_FILE in files)

    def highest(self, name: str) -> int:
        """The highest number of ``name`` taken in the store, claims included (0 if none)."""
        return max((v for n, v in self.files if n == name), default=0)


class VersionStore:
    """The bucket and prefix of ``url``; ``client``: an S3 client (default: boto3's, made at
    the first use)."""

    def __init__(self, url: str, client: Any | None = None) -> None:
        if not is_store_url(url):
            raise ValueError(f"expected s3://bucket/prefix, got {url!r}")
        bucket, _, prefix = url[len(SCHEME) :].partition("/")
        if not bucket:
            raise ValueError(f"expected s3://bucket/prefix, got {url!r}: no bucket")
        self.url = url.rstrip("/")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = _new_client()
        return self._client

    def key(self, name: str, version: int, file: str) -> str:
        return f"{self.prefix}{name}/{version}/{file}"

    def listing(self) -> Listing:
        """Every version in the bucket with its files (one paginated ListObjectsV2)."""
        listing = Listing()
        with self._failing("list"):
            pages = self.client.get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for item in page.get("Contents", []):
                    parsed = _parse_key(item["Key"][len(self.prefix) :])
                    if parsed is not None:
                        name, version, file = parsed
                        listing.files.setdefault((name, version), {})[file] = int(item["Size"])
        return listing

    def claim(self, name: str, after: int, tries: int = 100) -> int:
        """Take the first number above ``after`` that nobody has claimed; returns it."""
        version = after + 1
        for _attempt in range(tries):
            if self._put_new(self.key(name, version, CLAIM_FILE), b""):
                return version
            version += 1
        raise StoreError(f"could not claim a version number of {name} in {self.url}")

    def upload(
        self, folder: Path, name: str, version: int, on_file: Callable[[str], None] | None = None
    ) -> None:
        """Upload the version ``folder``: every file, then ``manifest.json`` (conditional:
        refused if the version exists). ``on_file(file)`` runs after each file is stored."""
        files = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != MANIFEST_FILE)
        for file in files:
            body = (folder / file).read_bytes()
            with self._failing(f"upload {file} of {name} v{version} to"):
                self.client.put_object(
                    Bucket=self.bucket, Key=self.key(name, version, file), Body=body
                )
            if on_file is not None:
                on_file(file)
        manifest = (folder / MANIFEST_FILE).read_bytes()
        if not self._put_new(self.key(name, version, MANIFEST_FILE), manifest):
            raise StoreError(f"version {version} of {name} already exists in {self.url}")

    def download(self, name: str, version: int, files: dict[str, int], into: Path) -> None:
        """Download the files of a version (``files``: name -> size) into the folder ``into``."""
        for file, size in files.items():
            if file.startswith("."):
                continue  # the claim: not part of the version
            with self._failing(f"download {file} of {name} v{version} from"):
                reply = self.client.get_object(
                    Bucket=self.bucket, Key=self.key(name, version, file)
                )
                data = reply["Body"].read()
            if len(data) != size:
                raise StoreError(
                    f"{file} of {name} v{version} in {self.url}: got {len(data)} bytes, "
                    f"the listing said {size}"
                )
            (into / file).write_bytes(data)

    def pull(self, cache: Path) -> Listing:
        """Copy every published version the ``cache`` folder lacks into it, each renamed into
        place whole; returns the listing."""
        listing = self.listing()
        for name, version in listing.published():
            target = cache / name / str(version)
            if target.exists():
                continue
            try:
                _fetch_into(self, name, version, listing.files[(name, version)], cache, target)
            except OSError as exc:
                raise StoreError(f"cannot write {name} v{version} into {cache}: {exc}") from exc
        return listing

    def _put_new(self, key: str, body: bytes) -> bool:
        """Write ``key`` only if it does not exist; ``False`` when it already did."""
        from botocore.exceptions import ClientError

        with self._failing(f"write {key} to"):
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                    return False
                raise
        return True

    @contextlib.contextmanager
    def _failing(self, what: str) -> Iterator[None]:
        """Turn the client's errors into ``StoreError("cannot <what> <url>: <why>")``."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            log.warning("version store: cannot %s %s: %s", what, self.url, exc)  # the whole text
            raise StoreError(f"cannot {what} {self.url}: {_why(exc)}") from exc


def _why(exc: Exception) -> str:
    """The client's error in words that name no endpoint host or port (botocore's connection
    errors quote the endpoint URL): the store's error code and message, or the error's kind."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__} (the endpoint could not be reached or did not answer)"


def _fetch_into(
    store: VersionStore, name: str, version: int, files: dict[str, int], cache: Path, target: Path
) -> None:
    """Download a version into a hidden folder of ``cache`` (never scanned), then rename it to
    ``target``; a copy that another process renamed there first is kept."""
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".incoming-{name}-{version}-", dir=cache))
    try:
        store.download(name, version, files, staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():
                raise
            # another process sharing the cache renamed its copy there first: keep it
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _parse_key(key: str) -> tuple[str, int, str] | None:
    """``<name>/<version>/<file>`` -> its parts, or ``None`` for any other key (a name or
    file that could leave the cache folder, a non-numeric version, a deeper path)."""
    parts = key.split("/")
    if len(parts) != 3:
        return None
    name, version, file = parts
    if not name or name.startswith(".") or not version.isdigit() or not file or file == "..":
        return None
    return name, int(version), file


def _new_client() -> Any:
    """A boto3 S3 client configured from the environment (endpoint, credentials, region)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:  # pragma: no cover - boto3 is a dependency
        raise StoreError(f"DIGITS_VERSIONS_URL=s3://... needs boto3: {exc}") from exc
    session = boto3.session.Session()  # its own: the default session is not thread-safe
    return session.client("s3", config=Config(**_CLIENT_OPTIONS))
