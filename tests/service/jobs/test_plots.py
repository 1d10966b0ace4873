"""Plots are drawn in their own bounded executor, so they never hold up job calls."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from service.http.app import create_app
from tests.service.jobs.conftest import SHORT_LOGISTIC, job_settings


@pytest.mark.anyio
async def test_a_burst_of_plot_requests_does_not_delay_listing_jobs(
    tmp_path: Path, models_dir: Path
) -> None:
    """With 24 plots being drawn, ``GET /train`` still answers before the plots are done."""
    app = create_app(job_settings(tmp_path, models_dir))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        job_id = (await client.post("/train", json=SHORT_LOGISTIC)).json()["id"]
        await app.state.jobs.wait(job_id, 60)
        start = time.monotonic()
        plots = [
            asyncio.create_task(client.get(f"/train/{job_id}/curve.png", timeout=120))
            for _ in range(24)
        ]
        await asyncio.sleep(0.1)  # let the plot requests reach the executor first
        listed = await client.get("/train", timeout=30)
        listed_after = time.monotonic() - start
        answers = await asyncio.gather(*plots)
        plots_after = time.monotonic() - start

    assert listed.status_code == 200
    assert all(a.status_code == 200 for a in answers)
    assert listed_after < plots_after / 2, (listed_after, plots_after)
