"""Repository unloads and loads racing inference, against a real ``python -m service``: every
answer is a prediction or says the model is unavailable (503 ``model_unavailable`` with
``Retry-After``; ``/v2`` infer on a model unloaded: 400, as Triton), never "the service is
shutting down" while it runs, and a load racing an unload never answers "was loaded but
cannot answer"."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.service.live import LiveService, running_copy

MODEL = "logistic"
ROUNDS = 12  # unload/load cycles per churning client
ROW = [0.0] * 64
V2_BODY = {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": ROW}]}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, tiny_models: Path) -> Iterator[LiveService]:
    with running_copy(tiny_models, tmp_path_factory.mktemp("unload-races")) as service:
        yield service


def kind(response: httpx.Response) -> str:
    """What an inference answer says: ``ok``, ``unavailable`` or ``unloaded``; anything else
    is returned as its status and body, to fail the test with."""
    if response.status_code == 200:
        return "ok"
    body = response.json()
    if response.status_code == 503 and response.headers.get("retry-after") == "1":
        error = body["error"]
        code = error["code"] if isinstance(error, dict) else None
        if code == "model_unavailable" or "retry after 1 s" in str(error):
            return "unavailable"
    if response.status_code == 400 and "is unloaded" in str(body.get("error")):
        return "unloaded"  # /v2 infer on an unloaded model: 400, as Triton answers
    return f"{response.status_code} {response.text}"


async def churn(client: httpx.AsyncClient, stop: asyncio.Event) -> list[str]:
    """Unload and load ``MODEL`` ``ROUNDS`` times; the answers that were not a plain 200."""
    odd = []
    for _ in range(ROUNDS):
        for action in ("unload", "load"):
            answer = await client.post(f"/v2/repository/models/{MODEL}/{action}", json={})
            if answer.status_code != 200:
                odd.append(f"{action}: {answer.status_code} {answer.text}")
    stop.set()
    return odd


#: Each inference route raced: its path under the model, and its body.
ROUTES = {
    "v2": (f"/v2/models/{MODEL}/infer", V2_BODY),
    "predict": (f"/models/{MODEL}/predict", {"pixels": ROW}),
    "explain": (f"/models/{MODEL}/explain", {"instances": [ROW] * 4}),
}


async def infer(client: httpx.AsyncClient, stop: asyncio.Event, route: str) -> Counter[str]:
    """Infer on ``route`` until the churn stops; the count of each kind of answer."""
    seen: Counter[str] = Counter()
    path, body = ROUTES[route]
    while not stop.is_set():
        answer = await client.post(path, json=body)
        seen[kind(answer)] += 1
    return seen


async def race(url: str) -> tuple[list[str], Counter[str]]:
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        stop = asyncio.Event()
        routes = list(ROUTES) * 3  # 9 clients, 3 on each route
        inferring = [asyncio.create_task(infer(client, stop, route)) for route in routes]
        # Two clients unload and load the same model at once: a load may meet an unload.
        churned = await asyncio.gather(churn(client, stop), churn(client, asyncio.Event()))
        counts = sum((await asyncio.gather(*inferring)), Counter())
        final = await client.post(f"/v2/repository/models/{MODEL}/load", json={})
        assert final.status_code == 200, final.text
        ready = await client.get(f"/v2/models/{MODEL}/ready")
        assert ready.status_code == 200
    return [line for lines in churned for line in lines], counts


def test_unloads_and_loads_racing_inference_answer_what_happened(live: LiveService) -> None:
    """9 clients infer (``/v2``, ``/predict``, ``/explain``) while 2 unload and load the model
    12 times each: every load and unload answers 200, every inference a prediction or "unavailable"
    (503 + ``Retry-After``) or "unloaded"; the log holds no traceback and no shutdown."""
    odd, counts = asyncio.run(race(live.url))
    print(dict(counts))  # noqa: T201  # the mix of answers, shown with -s
    assert odd == []
    unexpected = {k: n for k, n in counts.items() if k not in ("ok", "unavailable", "unloaded")}
    assert unexpected == {}
    assert counts["ok"] > 0, counts
    assert counts["unavailable"] + counts["unloaded"] > 0, counts  # the races did happen
    log = live.output()
    assert "Traceback" not in log
    assert "shutting down" not in log
