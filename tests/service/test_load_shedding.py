"""Load shedding: a full queue refuses at once (429), a request whose deadline passes while
queued is answered then (504) and never run; the queue wait and forward time are measured."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from asgi_lifespan import LifespanManager

from service.errors import DeadlineExceeded, Overloaded
from service.http.app import create_app
from service.inference.batcher import MicroBatcher
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio

ROW = np.zeros((1, 64), dtype=np.float32)


class GatedForward:
    """A forward that blocks (in the forward thread) until the test opens the gate, and
    records every row it ran."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.ran: list[float] = []

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.started.set()
        self.gate.wait(10)
        self.ran.extend(float(v) for v in x[:, 0])
        return x[:, :10].copy()


@pytest.fixture
async def gated() -> AsyncIterator[tuple[GatedForward, ThreadPoolExecutor]]:
    forward = GatedForward()
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield forward, pool
        forward.gate.set()


def rows(value: float, n: int = 1) -> np.ndarray:
    return np.full((n, 64), value, dtype=np.float32)


async def busy(batcher: MicroBatcher, forward: GatedForward) -> asyncio.Task[np.ndarray]:
    """Put a first request into the (blocked) forward, so what follows queues behind it."""
    first = asyncio.create_task(batcher.submit(rows(0)))
    while not forward.started.is_set():
        await asyncio.sleep(0.001)
    return first


async def test_a_request_beyond_the_queue_bound_is_refused_at_once(
    gated: tuple[GatedForward, ThreadPoolExecutor],
) -> None:
    forward, pool = gated
    batcher = MicroBatcher(forward, pool, max_batch_size=64, max_wait_ms=0, max_queued_rows=4)
    first = await busy(batcher, forward)
    queued = [asyncio.create_task(batcher.submit(rows(i + 1, 2))) for i in range(2)]
    await asyncio.sleep(0.01)  # both in the queue: 4 rows waiting
    with pytest.raises(Overloaded) as refused:
        await batcher.submit(rows(9))
    assert refused.value.headers == {"Retry-After": "1"}
    assert "4 rows are already waiting" in refused.value.message
    forward.gate.set()
    await asyncio.gather(first, *queued)
    assert 9.0 not in forward.ran  # the refused rows never ran
    # Once drained, the queue takes requests again; and one request finding the queue
    # empty always gets in, whatever its size.
    assert (await batcher.submit(rows(7, 10))).shape == (10, 10)
    await batcher.aclose()


async def test_a_request_whose_deadline_passes_in_the_queue_is_answered_then_and_not_run(
    gated: tuple[GatedForward, ThreadPoolExecutor],
) -> None:
    forward, pool = gated
    batcher = MicroBatcher(forward, pool, max_batch_size=64, max_wait_ms=0)
    first = await busy(batcher, forward)
    loop = asyncio.get_running_loop()
    start = loop.time()
    late = asyncio.create_task(batcher.submit(rows(5), deadline=start + 0.05))
    patient = asyncio.create_task(batcher.submit(rows(6), deadline=start + 30))
    with pytest.raises(DeadlineExceeded, match="deadline passed; it was not run"):
        await late
    assert loop.time() - start < 1.0  # answered at its deadline, not when the forward ended
    forward.gate.set()
    await first
    assert (await patient).shape == (1, 10)
    assert forward.ran == [0.0, 6.0]  # the expired row was skipped
    await batcher.aclose()


async def test_a_deadline_already_past_is_refused_without_queueing(
    gated: tuple[GatedForward, ThreadPoolExecutor],
) -> None:
    forward, pool = gated
    forward.gate.set()
    batcher = MicroBatcher(forward, pool, max_batch_size=64, max_wait_ms=0)
    with pytest.raises(DeadlineExceeded):
        await batcher.submit(rows(3), deadline=asyncio.get_running_loop().time() - 1)
    assert forward.ran == []
    await batcher.aclose()


async def test_rows_of_a_caller_that_went_away_are_not_run(
    gated: tuple[GatedForward, ThreadPoolExecutor],
) -> None:
    forward, pool = gated
    batcher = MicroBatcher(forward, pool, max_batch_size=64, max_wait_ms=0)
    first = await busy(batcher, forward)
    gone = asyncio.create_task(batcher.submit(rows(4)))
    await asyncio.sleep(0.01)
    gone.cancel()
    forward.gate.set()
    await first
    assert (await batcher.submit(rows(8))).shape == (1, 10)
    assert forward.ran == [0.0, 8.0]
    await batcher.aclose()


@pytest.fixture
async def client(models_dir: Path) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    app = create_app(make_settings(models_dir))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http, app


async def test_x_request_timeout_ms_that_has_passed_is_504_in_the_envelope(
    client: tuple[httpx.AsyncClient, object],
) -> None:
    http, _app = client
    body = {"pixels": [0] * 64}
    late = await http.post("/predict", json=body, headers={"X-Request-Timeout-Ms": "0.000001"})
    assert late.status_code == 504
    assert late.json()["error"]["code"] == "deadline_exceeded"
    ok = await http.post("/predict", json=body, headers={"X-Request-Timeout-Ms": "5000"})
    assert ok.status_code == 200


@pytest.mark.parametrize("value", ["soon", "0", "-5", "nan", "inf"])
async def test_a_malformed_x_request_timeout_ms_is_422_naming_the_header(
    client: tuple[httpx.AsyncClient, object], value: str
) -> None:
    http, _app = client
    bad = await http.post(
        "/predict", json={"pixels": [0] * 64}, headers={"X-Request-Timeout-Ms": value}
    )
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["message"].startswith("X-Request-Timeout-Ms")


async def test_queue_wait_and_forward_time_are_histograms_in_metrics(
    client: tuple[httpx.AsyncClient, object],
) -> None:
    http, _app = client
    await asyncio.gather(*(http.post("/predict", json={"pixels": [1] * 64}) for _ in range(8)))
    text = (await http.get("/metrics")).text
    samples = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith(("digits_queue_wait_seconds_count", "digits_forward_seconds_count"))
    }
    labels = '{model="cnn",version="1"}'
    assert samples[f"digits_queue_wait_seconds_count{labels}"] == 8  # one per request
    forwards = samples[f"digits_forward_seconds_count{labels}"]
    assert 1 <= forwards <= 8  # one per batch
