"""The SSE stream of a job, read by an async client through the app's lifespan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from service.http.app import create_app
from tests.service.jobs.conftest import job_settings


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
