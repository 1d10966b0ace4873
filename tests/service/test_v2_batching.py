"""/v2 inference goes through the same micro-batchers as /predict: requests of both protocols
for one model version share a forward."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from service.settings import Settings
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio
ZERO = [0] * 64


@pytest.fixture
def settings(models_dir: Path) -> Settings:
    """Every forward in the forward thread (none inline), so a test can hold that thread."""
    return make_settings(models_dir, inline_forward_max_us=0)


def _v2_rows(n: int) -> dict[str, object]:
    return {"inputs": [{"name": "pixels", "shape": [n, 64], "datatype": "FP32", "data": ZERO * n}]}


async def test_a_v2_request_and_a_predict_request_share_a_forward(
    app: FastAPI, aclient: httpx.AsyncClient
) -> None:
    """While the forward thread is busy, a 1-row /predict and a 2-row /v2 request queue for
    fnn v1 and then run in one forward: no batch of 2 rows or fewer is ever run."""
    dataplane = app.state.dataplane
    gate = threading.Event()
    dataplane.executor.submit(gate.wait, 30)  # holds the forward thread
    try:
        prime = asyncio.create_task(
            aclient.post("/models/fnn/predict", json={"instances": [ZERO] * 5})
        )
        await asyncio.sleep(0.2)  # the 5-row batch is dispatched, waiting for the thread
        predict = asyncio.create_task(aclient.post("/models/fnn/predict", json={"pixels": ZERO}))
        v2 = asyncio.create_task(aclient.post("/v2/models/fnn/infer", json=_v2_rows(2)))
        await asyncio.sleep(0.2)  # both queued behind it
    finally:
        gate.set()
    answers = await asyncio.gather(prime, predict, v2)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[2].json()["outputs"][0]["shape"] == [2, 10]
    registry = app.state.metrics.registry
    labels = {"model": "fnn", "version": "1"}
    assert registry.get_sample_value("digits_batch_size_rows_sum", labels) == 8
    assert registry.get_sample_value("digits_batch_size_rows_count", labels) == 2
    assert registry.get_sample_value("digits_batch_size_rows_bucket", {**labels, "le": "2.0"}) == 0
