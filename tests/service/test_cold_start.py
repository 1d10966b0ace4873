"""Cold start (issue 16): what start-up leaves out or defers still works when it is needed.

Imports deferred to first use, the collector paused while ``python -m service`` starts and
resumed once the models are loaded, and the inline-forward calibration timing forwards of
about its budget, not of ``max_batch_size`` rows. The figures: ``bench/cold_start.py``.
"""

from __future__ import annotations

import gc
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from asgi_lifespan import LifespanManager

from service import __main__ as service_main
from service.http.app import create_app
from service.inference.dataplane import DataPlane
from service.rollout.aliases import AliasStore
from service.startup import pause_gc, resume_gc
from tests.conftest import make_settings
from tests.service.conftest import republish
from tests.service.live import running_service

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def collector_restored() -> Iterator[None]:
    """Whatever a test does to the collector, the test process collects again after it."""
    try:
        yield
    finally:
        resume_gc()
        gc.enable()


def test_the_app_imports_nothing_that_start_up_does_not_use() -> None:
    """Importing the app loads neither Pillow, matplotlib, scikit-learn, SciPy, Celery nor
    the job worker's training code; an image still decodes, Pillow imported then. (A job
    still runs: tests/service/jobs.)"""
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    image = PILImage.new("L", (32, 32), 255)
    image.paste(0, (0, 0, 4, 4))  # one block of ink, top left
    image.save(buffer, format="PNG")
    script = """
import json, sys
import service.http.app
unused = ("PIL", "matplotlib", "sklearn", "scipy", "celery", "service.jobs.worker")
before = [m for m in unused if m in sys.modules]
from service.inference.digit_image import ImageLimits, reduce_image
values = reduce_image(sys.stdin.buffer.read(), ImageLimits(10**6, 10**6))
print(json.dumps({"before": before, "values": values.tolist(), "pil": "PIL" in sys.modules}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        input=buffer.getvalue(),
        capture_output=True,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["before"] == []
    assert result["values"] == [16.0] + [0.0] * 63
    assert result["pil"]


@pytest.mark.usefixtures("collector_restored")
@pytest.mark.anyio
async def test_the_lifespan_resumes_a_paused_collector_once_the_models_are_loaded(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m service`` pauses the collector: the models load without it and the app
    collects again once started."""
    seen: list[bool] = []
    refresh = DataPlane.refresh

    async def recording(self: DataPlane) -> Any:
        seen.append(gc.isenabled())
        return await refresh(self)

    monkeypatch.setattr(DataPlane, "refresh", recording)
    pause_gc()
    app = create_app(make_settings(models_dir))
    async with LifespanManager(app):
        assert gc.isenabled()
        assert app.state.registry.state("logistic").ready
    assert seen == [False]


@pytest.mark.usefixtures("collector_restored")
def test_resume_gc_leaves_a_collector_it_did_not_pause() -> None:
    """A collector disabled by someone else stays disabled; one it paused is resumed once."""
    gc.disable()
    resume_gc()
    assert not gc.isenabled()
    gc.enable()
    pause_gc()
    assert not gc.isenabled()
    resume_gc()
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_restored")
@pytest.mark.parametrize(("workers", "paused"), [(1, True), (2, False)])
def test_main_runs_uvicorn_with_the_collector_paused_for_one_worker(
    workers: int, paused: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """One process: paused while uvicorn imports the app and loads the models (the lifespan
    resumes it; here uvicorn returns at once, and main resumes it). With several workers the
    supervising process never loads the app: nothing paused. No WebSocket support loaded."""
    calls: list[tuple[bool, dict[str, Any]]] = []
    monkeypatch.setattr(
        service_main.uvicorn, "run", lambda *a, **k: calls.append((not gc.isenabled(), k))
    )
    monkeypatch.chdir(tmp_path)  # no .env
    for key in [k for k in os.environ if k.startswith("DIGITS_")]:
        monkeypatch.delenv(key)
    assert service_main.main(["--workers", str(workers), "--port", "8199"]) == 0
    [(was_paused, options)] = calls
    assert was_paused is paused
    assert options["ws"] == "none"
    assert gc.isenabled()


class _Timed:
    """A stand-in CPU model whose forward costs ``fixed_us + per_row_us * rows`` (busy)."""

    name, version, device = "timed", 1, "cpu"

    def __init__(self, fixed_us: float, per_row_us: float) -> None:
        self.fixed_us, self.per_row_us = fixed_us, per_row_us
        self.rows: list[int] = []

    def predict_scored(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 11): probabilities and the outlier score, as ``LoadedModel`` answers."""
        self.rows.append(len(x))
        end = time.perf_counter() + (self.fixed_us + self.per_row_us * len(x)) * 1e-6
        while time.perf_counter() < end:
            pass
        return torch.zeros(len(x), 11)


def test_calibration_times_forwards_of_about_its_budget_not_of_a_whole_batch(
    tmp_path: Path,
) -> None:
    """A forward of 100 us + 50 us/row fits 18 rows in the 1000 us budget: the calibration
    finds (about) that without timing a forward of ``max_batch_size`` (256) rows; a model
    cheap enough for whole batches is timed at ``max_batch_size`` to say so."""
    plane = DataPlane.__new__(DataPlane)  # only the calibration's settings are read
    plane.max_batch_size, plane.inline_forward_max_us = 256, 1000.0
    slow = _Timed(100, 50)
    rows = plane._inline_rows(slow)  # type: ignore[arg-type]  # a stand-in LoadedModel
    assert 12 <= rows <= 19  # 18 exactly on an idle core; load only makes forwards dearer
    assert max(slow.rows) <= 20
    cheap = _Timed(5, 0.5)
    assert plane._inline_rows(cheap) == 256  # type: ignore[arg-type]
    assert max(cheap.rows) == 256
    costly = _Timed(2000, 10)  # over budget at one row: never inline
    assert plane._inline_rows(costly) == 0  # type: ignore[arg-type]
    assert max(costly.rows) == 16


@pytest.mark.timeout(180)
def test_python_m_service_answers_with_the_production_version_of_its_database(
    models_dir: Path, tmp_path: Path
) -> None:
    """Started as a user starts it (collector paused, no WebSocket support), the service is
    ready with the version the alias store names, not the first on disk, and answers with it;
    an image (Pillow imported at that request) is classified too."""
    republish(models_dir, "cnn", old=1, new=2)
    aliases = AliasStore.open(f"sqlite:///{tmp_path / 'jobs.db'}")  # the service's database
    aliases.ensure_production("cnn", 2, "set before the service starts")
    aliases.close()
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new("L", (32, 32), 255).save(buffer, format="PNG")
    with running_service(models_dir, tmp_path) as service:
        ready = httpx.get(f"{service.url}/health/ready").json()
        answer = httpx.post(f"{service.url}/models/cnn/predict", json={"pixels": [0] * 64})
        image = httpx.post(
            f"{service.url}/models/cnn/predict/image",
            content=buffer.getvalue(),
            headers={"Content-Type": "image/png"},
        )
    assert ready["status"] == "ready"
    assert ready["models"]["cnn"]["default_version"] == 2
    assert ready["models"]["cnn"]["versions"] == [1, 2]
    assert (answer.status_code, answer.json()["version"]) == (200, "2")
    assert (image.status_code, image.json()["version"]) == (200, "2"), image.text


@pytest.mark.timeout(120)
def test_a_database_that_cannot_be_opened_still_stops_the_start_saying_why(
    models_dir: Path, tmp_path: Path
) -> None:
    """The start is refused before uvicorn (exit 2, like the other start refusals) with the
    error, and the service never says it started."""
    (tmp_path / "a-file").write_text("not a folder")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITS_")}
    env |= {
        "DIGITS_DATABASE_URL": f"sqlite:///{tmp_path / 'a-file' / 'jobs.db'}",
        "DIGITS_MODELS_DIR": str(models_dir),
        "DIGITS_DEVICE": "cpu",
    }
    done = subprocess.run(
        [sys.executable, "-m", "service", "--port", "1"],  # never bound: start-up fails first
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 2
    assert "digits-serve: cannot open the database" in done.stderr
    assert f"File exists: '{tmp_path / 'a-file'}'" in done.stderr
    assert "Application startup complete" not in done.stderr
