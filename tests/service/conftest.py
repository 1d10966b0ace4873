"""Fixtures of the service tests: the shipped models, hand-made artifacts, async clients."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import torch
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from service.http.app import create_app
from service.settings import Settings
from tests.conftest import SHIPPED_MODELS
from training.contract import MANIFEST_FILE, MODEL_FILE, Manifest, Metrics, sha256_file
from training.onnx_export import write_onnx

#: The runtimes a version can be served by (``DIGITS_RUNTIME``, docs/service.md "Runtimes").
RUNTIMES = ("torchscript", "onnxruntime")
#: The suites that run once per runtime: predict, /v2, the gate, the data plane and the
#: shadow (test_rollout). Every other suite runs under the default, ``auto`` (ONNX Runtime on
#: the CPU for every version with ``model.onnx``).
BOTH_RUNTIMES = frozenset(
    {
        "test_predict",
        "test_v2_client",
        "test_v2_batching",
        "test_v2_errors",
        "test_rollout",
        "test_promotion",
        "test_dataplane",
    }
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The ``BOTH_RUNTIMES`` suites run twice, ``[torchscript]`` and ``[onnxruntime]``
    (module-scoped, so a module's own fixtures are built once per runtime)."""
    if metafunc.module.__name__.rpartition(".")[2] in BOTH_RUNTIMES:
        metafunc.parametrize("serving_runtime", RUNTIMES, indirect=True, scope="module")


@pytest.fixture(scope="module", autouse=True)
def serving_runtime(request: pytest.FixtureRequest) -> Iterator[str]:
    """The runtime this module's tests serve with: ``DIGITS_RUNTIME`` is set for the module
    (``make_settings`` and ``python -m service`` read it), ``auto`` where not parametrized.
    A module-scoped fixture of the module that starts a service must take this fixture, so
    that it is built again for the other runtime."""
    runtime: str = getattr(request, "param", "auto")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DIGITS_RUNTIME", runtime)
        yield runtime


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the loop uvicorn uses)."""
    return "asyncio"


def write_artifact(root: Path, name: str, version: int, module: torch.nn.Module) -> Path:
    """Script ``module`` and write it as ``root/name/version`` with a valid manifest, as
    ``model.pt`` and ``model.onnx`` (checked against each other on a few rows of 0..16), so
    that either runtime serves it."""
    folder = root / name / str(version)
    folder.mkdir(parents=True)
    scripted = torch.jit.script(module.eval())
    torch.jit.save(scripted, str(folder / MODEL_FILE))
    probe = torch.arange(16 * 64, dtype=torch.float32).reshape(16, 64) % 17
    onnx = write_onnx(scripted, folder, probe)
    manifest = Manifest(
        name=name,
        version=version,
        family="logistic",
        architecture={"family": "logistic"},
        hyperparameters={},
        recipe="hand-set",
        data_split={},
        metrics=Metrics(
            train_accuracy=0,
            test_accuracy=0,
            test_errors=0,
            n_test=0,
            final_loss=0,
            fit_seconds=0,
            iterations=0,
        ),
        torch_version=torch.__version__,
        created=datetime.now(UTC),
        sha256=sha256_file(folder / MODEL_FILE),
        onnx=onnx,
    )
    (folder / MANIFEST_FILE).write_text(manifest.model_dump_json())
    return folder


def republish(root: Path, name: str, old: int, new: int) -> None:
    """Copy ``name/old`` to ``name/new`` (manifest renumbered), renamed into place at once."""
    staging = root / name / f".staging-{new}"
    shutil.copytree(root / name / str(old), staging)
    manifest = Manifest.model_validate_json((staging / MANIFEST_FILE).read_text())
    manifest.version = new
    (staging / MANIFEST_FILE).write_text(manifest.model_dump_json())
    staging.rename(root / name / str(new))


@pytest.fixture
def shipped_models(tmp_path: Path) -> Path:
    """A private copy of the repository's shipped ``models/`` folder."""
    if not all(
        (SHIPPED_MODELS / f / "1" / MODEL_FILE).is_file() for f in ("logistic", "fnn", "cnn")
    ):
        pytest.fail(
            "the shipped models/{logistic,fnn,cnn}/1 are missing: they are part of the "
            "repository (python -m training --recipe default writes them)"
        )
    target = tmp_path / "shipped"
    shutil.copytree(SHIPPED_MODELS, target)
    return target


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """An app on the tiny models whose lifespan has run."""
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def aclient(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An async client on ``app``, for concurrent requests."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
