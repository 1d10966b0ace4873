"""The SSE stream of a job, read by an async client through the app's lifespan; the bounds
on its followers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from service.http.app import create_app
from tests.service.jobs.conftest import LONG_CNN, job_settings


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """``(event, data)`` of each event in a ``text/event-stream`` body (pings skipped)."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields and "data" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


@pytest.mark.anyio
async def test_events_stream_state_then_progress_then_final(
    tmp_path: Path, models_dir: Path
) -> None:
    """A client gets the state so far, progress events while the fit runs, then the end."""
    app = create_app(job_settings(tmp_path, models_dir))
    body = {"family": "fnn", "hyperparameters": {"iterations": 1500, "acc_step": 250}}
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        job_id = (await client.post("/train", json=body)).json()["id"]
        response = await client.get(f"/train/{job_id}/events", timeout=120)
        late = await client.get(f"/train/{job_id}/events", timeout=30)

    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "state"
    assert kinds[-1] == "final"
    assert "progress" in kinds
    progress = [data for kind, data in events if kind == "progress"]
    iterations = [p["progress"]["iteration"] for p in progress]
    assert iterations == sorted(iterations)
    streamed = [loss for p in progress for loss in p["losses"]]
    steps = 1500 * 6  # the fit on every training row and 5 out-of-fold fits
    assert progress[0]["first_iteration"] + len(streamed) - 1 <= steps
    final = events[-1][1]
    assert final["status"] == "succeeded"
    assert final["loss_points"] == steps
    assert len(final["loss_curve"]) == 1000  # thinned: ceil(9000 / 1000) = 9 iterations a point
    assert final["loss_curve_stride"] == 9
    assert final["model"]["name"] == "fnn"

    late_events = parse_sse(late.text)
    assert [kind for kind, _ in late_events] == ["state", "final"]
    assert late_events[0][1]["loss_points"] == steps


@pytest.mark.anyio
async def test_followers_past_the_bounds_get_429_with_retry_after(
    tmp_path: Path, models_dir: Path
) -> None:
    """Two followers per job and three in all: the next one of a job, or the next one at all,
    is refused before its stream starts; once streams end their places are free again."""
    settings = job_settings(
        tmp_path, models_dir, max_event_followers_per_job=2, max_event_followers=3
    )
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        running = (await client.post("/train", json=LONG_CNN)).json()["id"]
        queued = (await client.post("/train", json=LONG_CNN)).json()["id"]

        async def follow(job_id: str, open_streams: int) -> asyncio.Task[httpx.Response]:
            task = asyncio.create_task(client.get(f"/train/{job_id}/events", timeout=120))
            while app.state.feeds.followers < open_streams:
                await asyncio.sleep(0.01)
            return task

        held = [await follow(running, 1), await follow(running, 2)]
        # A refusal comes at once; a stream would not end before the job (hence wait_for).
        per_job = await asyncio.wait_for(client.get(f"/train/{running}/events"), 10)
        held.append(await follow(queued, 3))
        in_all = await asyncio.wait_for(client.get(f"/train/{queued}/events"), 10)
        for job_id in (queued, running):
            await client.delete(f"/train/{job_id}")
        streams = await asyncio.gather(*held)
        again = await client.get(f"/train/{queued}/events", timeout=30)

    for refused, whose in ((per_job, "of this job"), (in_all, "in all")):
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "overloaded"
        assert whose in refused.json()["error"]["message"]
        assert int(refused.headers["Retry-After"]) >= 1
    assert [parse_sse(s.text)[-1][0] for s in streams] == ["final"] * 3
    assert [kind for kind, _ in parse_sse(again.text)] == ["state", "final"]
