"""The version store against a real S3 server (moto in its own process): what a publisher
writes, what a replica's refresh copies into its cache and serves, and what neither does
when the server goes away or an object is not what its manifest says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.http.app import create_app
from service.inference.artifact_store import StoreError, VersionStore
from service.inference.registry import ModelRegistry
from service.inference.repository import ModelRepository
from service.rollout.aliases import AliasStore
from service.settings import Settings
from tests.conftest import make_settings
from tests.service.conftest import write_artifact
from tests.service.live import free_port
from tests.service.s3 import BUCKET, Moto, Server, point_at, proxy_to, running
from tests.service.test_registry import label, lit

URL = f"s3://{BUCKET}/prod"


@pytest.fixture
def moto() -> Iterator[Moto]:
    server = Moto()
    with running(server):
        yield server


@pytest.fixture
def proxy(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A proxy to ``moto`` that this process's store goes through (cut it with ``kill``)."""
    server = proxy_to(moto)
    point_at(monkeypatch, server.port)
    with running(server):
        yield server


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    """A shipped folder with version 1 of ``m`` (answers 1)."""
    write_artifact(tmp_path / "shipped", "m", 1, lit(1))
    return tmp_path / "shipped"


def replica(shipped: Path, cache: Path) -> ModelRegistry:
    """A registry like an API replica's: the shipped folder, a cache of its own, the store."""
    aliases = AliasStore.open(f"sqlite:///{cache.parent / (cache.name + '-aliases.db')}")
    repository = ModelRepository(shipped, cache)
    registry = ModelRegistry(repository, "cpu", aliases, VersionStore(URL))
    registry.refresh()
    return registry


def publish(tmp_path: Path, version: int, answer: int) -> Path:
    """Claim ``version`` of ``m`` and upload a version answering ``answer``."""
    store = VersionStore(URL)
    assert store.claim("m", version - 1) == version
    folder = write_artifact(tmp_path / f"src-{version}", "m", version, lit(answer))
    store.upload(folder, "m", version)
    return folder


def test_a_published_version_reaches_a_replica_whole_and_numbers_are_never_shared(
    proxy: Server, moto: Moto, shipped: Path, tmp_path: Path
) -> None:
    """Files first and the manifest last, under ``prefix/name/version``; a replica's refresh
    copies it into its cache and serves it. A number claimed once is never handed out
    again, and a second manifest for a published version is refused by the store."""
    published = publish(tmp_path, 2, answer=2)
    files = (".claim", "manifest.json", "model.onnx", "model.pt")
    assert moto.objects() == [f"prod/m/2/{f}" for f in files]
    cache = tmp_path / "cache"
    registry = replica(shipped, cache)
    assert label(registry, 2) == 2
    assert registry.store_problem is None
    assert sorted(p.name for p in cache.iterdir()) == ["m"]  # no download folder left over
    assert (cache / "m" / "2" / "model.pt").read_bytes() == (published / "model.pt").read_bytes()

    store = VersionStore(URL)
    assert store.claim("m", 1) == 3  # 2 is taken: the next worker gets 3
    assert store.claim("m", 1) == 4
    with pytest.raises(StoreError, match="version 2 of m already exists"):
        store.upload(write_artifact(tmp_path / "other", "m", 2, lit(5)), "m", 2)
    registry.refresh()
    assert label(registry, 2) == 2  # the first publication stands
    assert store.listing().highest("m") == 4  # claims count for the numbering
    assert store.listing().published() == [("m", 2)]  # claims alone are no version


def test_an_upload_cut_midway_is_never_served(
    proxy: Server, moto: Moto, shipped: Path, tmp_path: Path
) -> None:
    """The store goes away after the first file of a version: the upload fails saying so,
    and once the store is back its files without a manifest are never served."""
    store = VersionStore(URL)
    version = store.claim("m", 1)
    folder = write_artifact(tmp_path / "src", "m", version, lit(2))
    with pytest.raises(StoreError) as failure:
        store.upload(folder, "m", version, on_file=lambda _file: proxy.kill())
    proxy.start()
    assert moto.objects() == ["prod/m/2/.claim", "prod/m/2/model.onnx"]  # the first file only
    registry = replica(shipped, tmp_path / "cache")
    assert registry.store_problem is None
    assert [m.version for m in registry.versions("m")] == [1]
    assert not (tmp_path / "cache" / "m" / "2").exists()
    assert store.claim("m", 1) == 3  # the half-written number stays taken
    assert str(failure.value).startswith(f"cannot upload model.pt of m v2 to {URL}: ")


def test_a_replica_keeps_serving_while_the_store_is_away_and_recovers(
    proxy: Server, shipped: Path, tmp_path: Path
) -> None:
    """The store cut mid-run: the refresh says why (``store_problem``) and what was loaded
    keeps answering; once it is back, the next refresh clears the problem and picks up a
    version published meanwhile."""
    publish(tmp_path, 2, answer=2)
    registry = replica(shipped, tmp_path / "cache")
    proxy.kill()
    registry.refresh()
    assert registry.store_problem is not None
    assert registry.store_problem.startswith(f"cannot list {URL}: ")
    assert label(registry, 2) == 2
    proxy.start()
    publish(tmp_path, 3, answer=3)
    registry.refresh()
    assert registry.store_problem is None
    assert label(registry, 3) == 3


def test_a_tampered_object_is_refused(
    proxy: Server, moto: Moto, shipped: Path, tmp_path: Path
) -> None:
    """``model.pt`` replaced in the bucket after publication: a replica copies it, and the
    load refuses it on its sha256 as it refuses a tampered folder; the others still serve."""
    publish(tmp_path, 2, answer=2)
    other = write_artifact(tmp_path / "evil", "m", 2, lit(7))
    moto.client().put_object(
        Bucket=BUCKET, Key="prod/m/2/model.pt", Body=(other / "model.pt").read_bytes()
    )
    cache = tmp_path / "cache"
    registry = replica(shipped, cache)
    assert [m.version for m in registry.versions("m")] == [1]
    reason = registry.failures[str(cache / "m" / "2")]
    assert "sha256" in reason
    assert "its manifest says" in reason


def test_keys_outside_the_layout_are_ignored(
    proxy: Server, moto: Moto, shipped: Path, tmp_path: Path
) -> None:
    """Objects that are not ``name/version/file`` under the prefix (a name that would leave
    the cache, a non-numeric version, a deeper path) are never written to disk."""
    client = moto.client()
    for key in ("prod/../9/manifest.json", "prod/m/x/manifest.json", "prod/m/4/a/manifest.json"):
        client.put_object(Bucket=BUCKET, Key=key, Body=b"{}")
    cache = tmp_path / "cache"
    registry = replica(shipped, cache)
    assert registry.store_problem is None
    assert not cache.exists() or list(cache.iterdir()) == []
    assert not (tmp_path / "9").exists()


def test_versions_url_takes_a_bucket_or_a_local_folder(tmp_path: Path) -> None:
    """``s3://bucket/prefix`` is kept; a local path (or ``file://``) is the versions folder;
    any other scheme is refused naming what is expected."""

    def settings(url: str) -> Settings:
        return Settings(_env_file=None, versions_url=url)  # type: ignore[call-arg]

    assert settings("s3://b/p").versions_url == "s3://b/p"
    local = settings(str(tmp_path / "v"))
    assert (local.versions_url, local.versions_dir) == (None, tmp_path / "v")
    assert settings(f"file://{tmp_path}/w").versions_dir == tmp_path / "w"
    with pytest.raises(ValidationError, match="expected s3://bucket/prefix or a local path"):
        settings("gs://b/p")
    with pytest.raises(ValidationError, match="expected s3://bucket/prefix"):
        settings("s3:///p")


def test_readiness_names_the_store_problem_only_to_key_holders(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store nobody answers for: the app starts ``degraded`` on its shipped models; with
    the read key ``/health/ready`` says which store and why, without it only that the
    version store cannot be read (no bucket, no address)."""
    port = free_port()  # nothing listens there
    point_at(monkeypatch, port)
    settings = make_settings(models_dir, versions_url=URL, read_api_key="reader")
    with TestClient(create_app(settings)) as client:
        full = client.get("/health/ready", headers={"X-API-Key": "reader"})
        assert full.status_code == 200
        assert full.json()["status"] == "degraded"
        assert full.json()["version_store"].startswith(f"cannot list {URL}: ")
        public = client.get("/health/ready")
        assert public.status_code == 200
        assert public.json()["reason"] == "the version store cannot be read"
        assert BUCKET not in public.text
        assert str(port) not in public.text
        predicted = client.post(
            "/models/logistic/predict", json={"pixels": [0.0] * 64}, headers={"X-API-Key": "reader"}
        )
        assert predicted.status_code == 200  # the shipped version answers
