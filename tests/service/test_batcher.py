"""Micro-batching: concurrent requests share forwards; a lone request never waits."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from asgi_lifespan import LifespanManager

from service.http.app import create_app
from service.inference.batcher import MicroBatcher
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio


@pytest.fixture
async def executor() -> AsyncIterator[ThreadPoolExecutor]:
    """One forward thread, as the data plane has."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool


async def test_concurrent_http_requests_are_run_in_shared_batches(models_dir: Path) -> None:
    """32 simultaneous single-row requests run in fewer forwards than requests (a batch > 1)."""
    app = create_app(make_settings(models_dir, max_wait_ms=5))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            responses = await asyncio.gather(
                *(client.post("/predict", json={"pixels": [i % 17] * 64}) for i in range(32))
            )
        registry = app.state.metrics.registry
        labels = {"model": "cnn", "version": "1"}
        batches = registry.get_sample_value("digits_batch_size_rows_count", labels)
        rows = registry.get_sample_value("digits_batch_size_rows_sum", labels)
        single = registry.get_sample_value("digits_batch_size_rows_bucket", {**labels, "le": "1.0"})
    assert [r.status_code for r in responses] == [200] * 32
    assert rows == 32
    assert batches < 32
    assert single < batches  # at least one forward ran more than one row


async def test_lone_request_is_dispatched_without_waiting(executor: ThreadPoolExecutor) -> None:
    """With nothing else queued, a request runs at once even when max_wait_ms is 10 s."""
    batcher = MicroBatcher(lambda x: x[:, :10] * 2, executor, max_batch_size=8, max_wait_ms=10_000)
    start = time.perf_counter()
    result = await batcher.submit(np.ones((1, 64), dtype=np.float32))
    elapsed = time.perf_counter() - start
    await batcher.aclose()
    assert result.tolist() == [[2.0] * 10]
    assert elapsed < 2.0


async def test_results_are_split_back_to_their_callers(executor: ThreadPoolExecutor) -> None:
    """Requests gathered into one forward each get exactly their own rows back, in order."""
    sizes: list[int] = []

    def forward(x: np.ndarray) -> np.ndarray:
        sizes.append(len(x))
        return x[:, :10].copy()

    batcher = MicroBatcher(forward, executor, max_batch_size=64, max_wait_ms=0)
    inputs = [np.full((n, 64), float(i), dtype=np.float32) for i, n in enumerate([1, 3, 2, 5])]
    results = await asyncio.gather(*(batcher.submit(x) for x in inputs))
    await batcher.aclose()
    for x, result in zip(inputs, results, strict=True):
        np.testing.assert_array_equal(result, x[:, :10])
    assert sum(sizes) == 11
    assert len(sizes) < 4


async def test_request_larger_than_max_batch_size_runs_alone(executor: ThreadPoolExecutor) -> None:
    """A request of more rows than max_batch_size is one forward of its own, not mixed."""
    sizes: list[int] = []

    def forward(x: np.ndarray) -> np.ndarray:
        sizes.append(len(x))
        return x[:, :10].copy()

    batcher = MicroBatcher(forward, executor, max_batch_size=4, max_wait_ms=0)
    big, small = np.zeros((9, 64), np.float32), np.ones((2, 64), np.float32)
    results = await asyncio.gather(batcher.submit(small), batcher.submit(big))
    await batcher.aclose()
    assert [len(r) for r in results] == [2, 9]
    assert 9 in sizes
    assert sorted(sizes) == [2, 9]


async def test_failed_forward_fails_its_callers_and_the_batcher_keeps_serving(
    executor: ThreadPoolExecutor,
) -> None:
    """An exception in the forward reaches the callers of that batch; the next batch runs."""
    calls: list[int] = []

    def forward(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        if len(calls) == 1:
            raise RuntimeError("boom")
        return x[:, :10].copy()

    batcher = MicroBatcher(forward, executor, max_batch_size=4, max_wait_ms=0)
    with pytest.raises(RuntimeError, match="boom"):
        await batcher.submit(np.zeros((1, 64), np.float32))
    result = await batcher.submit(np.zeros((1, 64), np.float32))
    await batcher.aclose()
    assert result.shape == (1, 10)


async def test_small_batches_run_inline_and_large_ones_in_the_executor(
    executor: ThreadPoolExecutor,
) -> None:
    """Batches of at most ``inline_rows`` rows run on the event loop's thread, others not."""
    threads: list[int] = []

    def forward(x: np.ndarray) -> np.ndarray:
        threads.append(threading.get_ident())
        return x[:, :10]

    batcher = MicroBatcher(forward, executor, max_batch_size=64, max_wait_ms=0, inline_rows=4)
    small = await batcher.submit(np.ones((4, 64), dtype=np.float32))
    large = await batcher.submit(np.ones((5, 64), dtype=np.float32))
    await batcher.aclose()
    assert small.shape == (4, 10)
    assert large.shape == (5, 10)
    assert threads[0] == threading.get_ident()
    assert threads[1] != threading.get_ident()


async def test_inline_rows_come_from_the_measured_forward_cost(models_dir: Path) -> None:
    """At warm-up each CPU model gets the most rows whose forward fits the inline budget;
    a budget of 0 keeps every forward in the thread."""
    app = create_app(make_settings(models_dir))
    async with LifespanManager(app):
        dataplane = app.state.dataplane
        models = [m for m, _b in dataplane._batchers.values()]
        rows = [b.inline_rows for _m, b in dataplane._batchers.values()]
        assert all(0 <= r <= dataplane.max_batch_size for r in rows)
        assert max(rows) > 0  # tiny test models: at least one forward is well under 1 ms
        dataplane.inline_forward_max_us = 0
        assert [dataplane._inline_rows(m) for m in models] == [0] * len(models)
        dataplane.inline_forward_max_us = 1e9
        assert {dataplane._inline_rows(m) for m in models} == {dataplane.max_batch_size}
