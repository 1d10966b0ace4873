"""Garbage-collector pauses of the serving process, with and without ``DIGITS_FREEZE_HEAP``
(not a test). Each mode runs in a fresh process, alternated over ``--rounds``:

    .venv/bin/python bench/gc_pauses.py [--rounds 2] [--requests 4000] [--models-dir models]

A process that has imported torch and loaded the models holds ~10^6 objects tracked by the
collector; every full (generation 2) collection walks them all, stopping the event loop and
every request on it. ``gc.freeze()`` after loading moves them out of the collector's way.
The app is driven in-process (httpx's ASGI transport, 64 concurrent single-row requests), the
pauses timed with ``gc.callbacks``; printed per generation: count, mean, max and total.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(freeze: bool, requests: int, models_dir: Path) -> dict[int, list[float]]:
    """In this process: start the app, send ``requests`` predicts 64 at a time, and return
    the pause of each collection by generation."""
    import httpx
    from asgi_lifespan import LifespanManager

    from service.http.app import create_app
    from service.settings import Settings

    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses[info["generation"]].append(time.perf_counter() - started[0])

    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(  # type: ignore[call-arg]  # pydantic-settings init-only option
                _env_file=None,
                models_dir=models_dir,
                versions_dir=Path(tmp) / "versions",
                database_url=f"sqlite:///{tmp}/jobs.db",
                device="cpu",
                reload_interval_s=0,
                freeze_heap=freeze,
            )
            app = create_app(settings)
            async with LifespanManager(app):
                gc.callbacks.append(on_gc)
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://b") as c:
                    body = {"pixels": [1] * 64}
                    for _ in range(requests // 64):
                        await asyncio.gather(*(c.post("/predict", json=body) for _ in range(64)))
                gc.callbacks.remove(on_gc)

    asyncio.run(run())
    return pauses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--child", choices=["on", "off"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        pauses = measure(args.child == "on", args.requests, args.models_dir)
        print(json.dumps(pauses))
        return
    totals: dict[str, dict[int, list[float]]] = {
        "off": {0: [], 1: [], 2: []},
        "on": {0: [], 1: [], 2: []},
    }
    for _ in range(args.rounds):
        for mode in ("off", "on"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", mode, "--requests", str(args.requests),
                 "--models-dir", str(args.models_dir)],
                check=True, capture_output=True, text=True, cwd=ROOT,
            ).stdout  # fmt: skip
            for gen, values in json.loads(out.splitlines()[-1]).items():
                totals[mode][int(gen)].extend(values)
    print(f"{args.rounds} round(s) x {args.requests} requests per mode, 64 concurrent")
    print("freeze_heap  gen  collections  mean ms  max ms  total ms")
    for mode in ("off", "on"):
        for gen, values in totals[mode].items():
            if values:
                mean = 1e3 * sum(values) / len(values)
                print(
                    f"{mode:>11}  {gen:>3}  {len(values):>11}  {mean:7.2f}"
                    f"  {1e3 * max(values):6.1f}  {1e3 * sum(values):8.0f}"
                )
    off, on = totals["off"][2], totals["on"][2]
    if off and on:
        ratio = (sum(off) / len(off)) / (sum(on) / len(on))
        print(f"full collection pause, off / on: {ratio:.0f}x")


if __name__ == "__main__":
    main()
