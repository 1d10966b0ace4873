"""Plots are drawn in their own thread behind a bounded queue: they never hold up job calls,
a burst past the bound gets 429, and abandoned requests are not drawn."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from service.http.app import create_app
from service.http.plots import PlotQueue
from service.http.routes import train as train_routes
from tests.service.jobs.conftest import SHORT_LOGISTIC, job_settings


async def finished(client: httpx.AsyncClient, job_id: str, timeout: float = 60) -> None:
    """Until ``GET /train/{id}`` says the job has succeeded."""
    deadline = time.monotonic() + timeout
    while (status := (await client.get(f"/train/{job_id}")).json()["status"]) != "succeeded":
        assert status in ("queued", "running"), status
        assert time.monotonic() < deadline, f"job {job_id} still {status} after {timeout} s"
        await asyncio.sleep(0.05)


@pytest.mark.anyio
async def test_a_burst_of_plot_requests_does_not_delay_listing_jobs(
    tmp_path: Path, models_dir: Path
) -> None:
    """With 12 plots being drawn (within the bound), ``GET /train`` still answers before
    the plots are done."""
    app = create_app(job_settings(tmp_path, models_dir))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        job_id = (await client.post("/train", json=SHORT_LOGISTIC)).json()["id"]
        await finished(client, job_id)
        start = time.monotonic()
        plots = [
            asyncio.create_task(client.get(f"/train/{job_id}/curve.png", timeout=120))
            for _ in range(12)
        ]
        await asyncio.sleep(0.1)  # let the plot requests reach the executor first
        listed = await client.get("/train", timeout=30)
        listed_after = time.monotonic() - start
        answers = await asyncio.gather(*plots)
        plots_after = time.monotonic() - start

    assert listed.status_code == 200
    assert all(a.status_code == 200 for a in answers)
    assert listed_after < plots_after / 2, (listed_after, plots_after)


class _Client:
    """A request whose client is connected or has gone (Starlette's ``is_disconnected``)."""

    def __init__(self, gone: bool = False) -> None:
        self.gone = gone

    async def is_disconnected(self) -> bool:
        return self.gone


@pytest.mark.anyio
async def test_a_plot_whose_client_has_gone_is_not_drawn() -> None:
    """Requests abandoned while queued are dropped at their turn; the others are drawn."""
    queue = PlotQueue(max_waiting=8)
    release = threading.Event()
    drawn: list[str] = []

    def draw(name: str) -> bytes:
        release.wait(10)
        drawn.append(name)
        return name.encode()

    first = asyncio.create_task(queue.draw(_Client(), lambda: draw("first")))
    await asyncio.sleep(0.05)  # the first is drawing; the next two queue behind it
    gone = asyncio.create_task(queue.draw(_Client(gone=True), lambda: draw("gone")))
    kept = asyncio.create_task(queue.draw(_Client(), lambda: draw("kept")))
    release.set()
    assert list(await asyncio.gather(first, gone, kept)) == [b"first", None, b"kept"]
    assert drawn == ["first", "kept"]
    queue.close()


@pytest.mark.anyio
async def test_past_the_plot_bound_a_request_gets_429_with_retry_after(
    tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``max_queued_plots`` plots waiting, one more is refused at once, not queued."""
    release = threading.Event()

    def slow_draw(*args: object) -> bytes:
        release.wait(30)
        return b"png"

    app = create_app(job_settings(tmp_path, models_dir, max_queued_plots=2))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        job_id = (await client.post("/train", json=SHORT_LOGISTIC)).json()["id"]
        await finished(client, job_id)
        monkeypatch.setattr(train_routes, "_draw", slow_draw)
        url = f"/train/{job_id}/curve.png"
        held = [asyncio.create_task(client.get(url, timeout=60)) for _ in range(2)]
        while app.state.plotter.waiting < 2:
            await asyncio.sleep(0.01)
        refused = await asyncio.wait_for(client.get(url), 5)  # at once, not queued
        release.set()
        answers = await asyncio.gather(*held)

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "overloaded"
    assert int(refused.headers["Retry-After"]) >= 1
    assert [a.status_code for a in answers] == [200, 200]
