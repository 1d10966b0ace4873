"""In-process ASGI microbenchmark: CPU microseconds per predict request, no network (not a test).

    .venv/bin/python bench/asgi_micro.py [--app service|ceiling|naive] [--conc 1 64] [-n 3000]
        [--models-dir models] [--batch cnn fnn] [--profile 64] [--settings '{"max_wait_ms": 0}']

Drives the ASGI app directly under uvloop with a fake ``receive``/``send`` (no HTTP server, no
sockets): ``--conc`` concurrent clients each send single-row CNN requests to ``/predict``; the
figure is the process CPU time per request, which background load on the machine disturbs far
less than requests/s. ``--profile C`` prints a cProfile of a run at concurrency C. The HTTP
server's own cost (uvicorn + httptools, ~70 us/req here) is not in these figures: compare
apps with each other on this harness, and use ``bench/serve_bench.py`` for end-to-end figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

SEVEN = [0, 0, 2, 15, 16, 16, 13, 0, 0, 0, 8, 12, 8, 12, 16, 0, 0, 0, 0, 0, 0, 15, 10, 0,
         0, 0, 0, 0, 6, 16, 3, 0, 0, 0, 0, 3, 16, 16, 14, 0, 0, 0, 0, 0, 12, 10, 1, 0,
         0, 0, 0, 2, 15, 2, 0, 0, 0, 0, 0, 13, 8, 0, 0, 0]  # fmt: skip


def _scope(path: str, body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"localhost"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


async def _one(app: Any, path: str, body: bytes) -> None:
    sent = False
    status = None

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # as a server does until the client disconnects
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(path, body), receive, send)
    assert status == 200, status


def _children_cpu_s() -> float:
    """CPU seconds used so far by this process's live children (the service's job workers)."""
    total = 0.0
    for children in Path("/proc/self/task").glob("*/children"):
        for pid in children.read_text().split():
            with contextlib.suppress(OSError):  # a child that just exited
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def settle(limit_s: float = 90.0) -> float:
    """Wait until the app's children are idle (an app from before 2026-12-05 warmed its job
    workers 2 s after the lifespan, importing torch for seconds of CPU on this process's
    core, which would weigh on the first figures; today's starts none). The seconds waited."""
    began = time.perf_counter()
    last = _children_cpu_s()
    while time.perf_counter() - began < limit_s:
        await asyncio.sleep(1.0)
        now = _children_cpu_s()
        if now - last < 0.05 and time.perf_counter() - began > 5:
            break
        last = now
    return time.perf_counter() - began


async def _run(app: Any, path: str, body: bytes, conc: int, n: int) -> tuple[float, float]:
    """Wall and CPU microseconds per request for ``n`` requests from ``conc`` clients."""
    for _ in range(50):
        await _one(app, path, body)
    wall0, cpu0 = time.perf_counter(), time.process_time()

    async def client() -> None:
        for _ in range(n // conc):
            await _one(app, path, body)

    await asyncio.gather(*[client() for _ in range(conc)])
    done = n // conc * conc
    return (time.perf_counter() - wall0) / done * 1e6, (time.process_time() - cpu0) / done * 1e6


async def main(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    body1 = json.dumps({"instances": [SEVEN]}).encode()
    body256 = json.dumps({"instances": [SEVEN] * 256}).encode()
    if args.app == "ceiling":
        import ref_ceiling

        app: Any = ref_ceiling.create_app()
    elif args.app == "naive":
        import ref_naive

        app = ref_naive.create_app(str(args.models_dir / "cnn" / "1" / "model.pt"))
    else:
        from service.http.app import create_app
        from service.settings import Settings

        tmp = tempfile.mkdtemp()
        app = create_app(
            Settings(
                models_dir=args.models_dir,
                device="cpu",
                database_url=f"sqlite:///{tmp}/jobs.db",
                reload_interval_s=0,
                **json.loads(args.settings or "{}"),
            )
        )
    async with app.router.lifespan_context(app):
        await settle()
        for conc in args.conc:
            wall, cpu = await _run(app, "/predict", body1, conc, args.n)
            print(f"{args.app} single c={conc}: wall {wall:.0f} us/req  cpu {cpu:.0f} us/req")
        for model in args.batch or []:
            wall, cpu = await _run(app, f"/models/{model}/predict", body256, 4, args.n // 10)
            print(
                f"{args.app} batch256 {model} c=4: wall {wall:.0f} us/req  cpu {cpu:.0f} us/req"
                f" = {256 / cpu * 1e6:,.0f} rows/cpu-s"
            )
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            await _run(app, "/predict", body1, args.profile, args.n)
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(35)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--app", default="service", choices=["service", "ceiling", "naive"])
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--conc", type=int, nargs="+", default=[1, 64])
    parser.add_argument("-n", type=int, default=3000)
    parser.add_argument("--batch", nargs="*", help="also batches of 256 rows to these models")
    parser.add_argument("--profile", type=int, default=0, help="cProfile a run at this conc")
    parser.add_argument("--settings", default="", help="JSON of extra Settings fields")
    return parser


if __name__ == "__main__":
    uvloop.run(main(_parser().parse_args()))
