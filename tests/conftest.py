"""Fixtures shared by every test package: small real models exported into temporary folders,
settings built on ``tmp_path`` (never a patched global) and clients that run the lifespan."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from service.http.app import create_app
from service.settings import Settings
from training.data import Split, load_split
from training.export import export
from training.fit import train
from training.recipes import DEFAULT
from training.specs import FAMILIES

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_MODELS = ROOT / "models"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` skip, with the reason, on a machine without a CUDA device."""
    if torch.cuda.device_count() > 0:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.device_count() == 0)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _checkout_files() -> set[Path]:
    """Every file the service could write into the checkout: models/ and var/."""
    return {p for folder in (ROOT / "models", ROOT / "var") for p in folder.rglob("*")}


@pytest.fixture(scope="session", autouse=True)
def checkout_stays_clean() -> Iterator[None]:
    """No test writes into the checkout's models/ or var/ (settings point at tmp_path)."""
    before = _checkout_files()
    yield
    added = sorted(str(p.relative_to(ROOT)) for p in _checkout_files() - before)
    assert added == [], f"tests wrote into the checkout: {added}"


@pytest.fixture(scope="session")
def split() -> Split:
    """The lecture's split, loaded once per test session."""
    return load_split()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory, split: Split) -> Path:
    """A models folder holding version 1 of logistic, fnn and cnn, each fitted for 40 steps."""
    root = tmp_path_factory.mktemp("tiny-models")
    for family in FAMILIES:
        preset = DEFAULT[family]
        recipe = replace(preset.recipe, iterations=40, acc_step=20)
        model, result = train(preset.spec, split, recipe)
        export(
            model,
            spec=preset.spec,
            recipe=recipe,
            recipe_name="default",
            split=split,
            result=result,
            models_dir=root,
            name=family,
            measure=False,
        )
    return root


@pytest.fixture
def models_dir(tmp_path: Path, tiny_models: Path) -> Path:
    """A private copy of ``tiny_models`` that a test may change."""
    target = tmp_path / "models"
    shutil.copytree(tiny_models, target)
    return target


def make_settings(models_dir: Path, **overrides: object) -> Settings:
    """The one way tests build settings: on ``models_dir``, with a runtime versions folder and
    a SQLite job store of their own beside it (never the checkout's ``var/``), CPU, no
    polling unless asked, no heap freezing unless asked, no ``.env`` file."""
    token = uuid.uuid4().hex[:12]
    values: dict[str, object] = {
        "versions_dir": models_dir.parent / f"versions-{token}",
        "database_url": f"sqlite:///{models_dir.parent / f'jobs-{token}.db'}",
        "device": "cpu",
        "reload_interval_s": 0,
        # Hundreds of apps share the test process: frozen objects are never collected, so
        # cyclic garbage of earlier tests would pile up. Tested on its own (test_dataplane).
        "freeze_heap": False,
        # TestClient's and httpx's test hosts (``Host: testserver``, ``http://test``).
        "allowed_hosts": "testserver,test,localhost,127.0.0.1",
        **overrides,
    }
    return Settings(models_dir=models_dir, _env_file=None, **values)  # type: ignore[call-arg]  # pydantic-settings init-only option


@pytest.fixture
def settings(models_dir: Path) -> Settings:
    """Embedded-default settings on temporary folders (SQLite job store, local jobs)."""
    return make_settings(models_dir)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client on a fresh app whose lifespan has run (models loaded, ready)."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client
