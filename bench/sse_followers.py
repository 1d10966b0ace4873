"""``GET /train`` latency with many SSE followers of a running job (not a test).

    .venv/bin/python bench/sse_followers.py [--followers 300] [--requests 200] [--code DIR]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/EMPTY_DB]

Starts ``python -m service`` (from ``--code``, default this checkout: point it at another
checkout to compare), submits a long CNN job, and measures ``GET /train`` (p50 and p90 of
``--requests`` sequential requests) twice while the job trains: with no follower, then with
``--followers`` clients following the job's ``/events`` stream (opened from a separate
process, so their parsing does not slow the measuring client). Prints both, their ratio, and
how many followers were refused (429).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

import httpx
from serve_bench import wait_ready  # the sibling benchmark: one readiness wait

ROOT = Path(__file__).resolve().parents[1]
LONG_CNN = {"family": "cnn", "hyperparameters": {"iterations": 10000, "acc_step": 1000}}


def latencies(api: str, count: int) -> tuple[float, float]:
    """p50 and p90 of ``count`` sequential ``GET /train``, in ms."""
    times = []
    with httpx.Client(base_url=api, timeout=60) as client:
        for _ in range(count):
            start = time.perf_counter()
            client.get("/train").raise_for_status()
            times.append((time.perf_counter() - start) * 1e3)
    deciles = statistics.quantiles(times, n=10)
    return statistics.median(times), deciles[8]


async def _follow_all(url: str, count: int, opened: Synchronized[int], refused: Synchronized[int]):  # type: ignore[no-untyped-def]
    limits = httpx.Limits(max_connections=count + 10)
    async with httpx.AsyncClient(timeout=None, limits=limits) as client:

        async def one() -> None:
            async with client.stream("GET", url) as response:
                if response.status_code == 429:
                    refused.value += 1
                    return
                async for line in response.aiter_lines():
                    if line.startswith("event: state"):
                        opened.value += 1

        await asyncio.gather(*(one() for _ in range(count)))


def follow(url: str, count: int, opened: Synchronized[int], refused: Synchronized[int]) -> None:
    """Open ``count`` streams of ``url`` and read them until killed (a separate process)."""
    asyncio.run(_follow_all(url, count, opened, refused))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=300)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--port", type=int, default=8131)
    parser.add_argument("--code", type=Path, default=ROOT)
    parser.add_argument("--database-url", help="job store (default: SQLite in a temp folder)")
    args = parser.parse_args()
    api = f"http://127.0.0.1:{args.port}"
    folder = Path(tempfile.mkdtemp())
    env = {
        **os.environ,
        "PYTHONPATH": str(args.code),
        "DIGITS_MODELS_DIR": str(ROOT / "models"),
        "DIGITS_VERSIONS_DIR": str(folder / "versions"),
        "DIGITS_DATABASE_URL": args.database_url or f"sqlite:///{folder}/jobs.db",
        "DIGITS_LOG_LEVEL": "warning",
    }
    cmd = [sys.executable, "-m", "service", "--port", str(args.port), "--device", "cpu"]
    server = subprocess.Popen(cmd, cwd=args.code, env=env)
    follower = None
    try:
        wait_ready("service", server, f"{api}/health/ready", time.perf_counter())
        job = httpx.post(f"{api}/train", json=LONG_CNN, timeout=30).json()["id"]
        while httpx.get(f"{api}/train/{job}").json()["status"] != "running":
            time.sleep(0.2)
        idle = latencies(api, args.requests)
        opened, refused = multiprocessing.Value("i", 0), multiprocessing.Value("i", 0)
        url = f"{api}/train/{job}/events"
        follower = multiprocessing.Process(
            target=follow, args=(url, args.followers, opened, refused)
        )
        follower.start()
        while opened.value + refused.value < args.followers:
            time.sleep(0.2)
        time.sleep(2)  # a few progress events to every follower
        busy = latencies(api, args.requests)
        print(f"code: {args.code}; store: {env['DIGITS_DATABASE_URL'].split(':')[0]}")
        print(f"GET /train p50 {idle[0]:.1f} ms, p90 {idle[1]:.1f} ms with no follower")
        print(
            f"GET /train p50 {busy[0]:.1f} ms, p90 {busy[1]:.1f} ms with {opened.value} "
            f"followers ({refused.value} refused with 429)"
        )
        print(f"p50 ratio: {busy[0] / idle[0]:.2f} (target: within 2x)")
        httpx.delete(f"{api}/train/{job}")
    finally:
        if follower is not None:
            follower.kill()
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
