"""Training-job benchmark (not a test): /train against the CLI, and predict under training.

    .venv/bin/python bench/train_bench.py [--seconds 5] [--port 8130]

1. Fits the CNN with the lecture recipe (seed 0) with the CLI (``python -m training``), once
   with torch's default threads and once with one thread (``OMP_NUM_THREADS=1``: what a job
   worker uses), then the same fit as a job through ``POST /train`` on a running
   ``python -m service``; prints the fit seconds (``metrics.fit_seconds``, the fit loop only)
   and the largest difference between the job's loss curve and the CLI's.
2. Single-vector ``POST /predict`` throughput (8 concurrent clients, ``--seconds`` each) on
   the idle service, then while a long CNN job trains; prints both and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SEVEN = [0, 0, 2, 15, 16, 16, 13, 0, 0, 0, 8, 12, 8, 12, 16, 0, 0, 0, 0, 0, 0, 15, 10, 0,
         0, 0, 0, 0, 6, 16, 3, 0, 0, 0, 0, 3, 16, 16, 14, 0, 0, 0, 0, 0, 12, 10, 1, 0,
         0, 0, 0, 2, 15, 2, 0, 0, 0, 0, 0, 13, 8, 0, 0, 0]  # fmt: skip


def cli_fit(models_dir: Path, name: str, env: dict[str, str]) -> tuple[float, list[float]]:
    """Fit and export the lecture CNN with the CLI; its fit seconds and loss curve."""
    subprocess.run(
        [PY, "-m", "training", "--family", "cnn", "--recipe", "lecture", "--seed", "0",
         "--models-dir", str(models_dir), "--name", name, "--no-progress"],
        check=True, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    folder = max(
        (models_dir / name).iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else 0
    )
    manifest = json.loads((folder / "manifest.json").read_text())
    curves = json.loads((folder / "curves.json").read_text())
    return manifest["metrics"]["fit_seconds"], curves["loss"]


def wait_job(client: httpx.Client, job_id: str, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/train/{job_id}").json()
        if body["status"] in ("succeeded", "failed", "cancelled"):
            return body
        time.sleep(0.2)
    raise TimeoutError(job_id)


async def throughput(base: str, seconds: float, concurrency: int = 8) -> float:
    """Single-vector predictions per second over ``seconds`` with ``concurrency`` clients."""
    done = 0
    body = {"pixels": SEVEN}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await client.post("/predict", json=body)
        end = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < end:
                response = await client.post("/predict", json=body)
                response.raise_for_status()
                done += 1

        start = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.monotonic() - start)


def start_service(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DIGITS_MODELS_DIR": str(tmp / "models"),
        "DIGITS_DATABASE_URL": f"sqlite:///{tmp / 'jobs.db'}",
        "DIGITS_PORT": str(port),
        "DIGITS_DEFAULT_MODEL": "cnn",
        "DIGITS_LOG_LEVEL": "warning",
    }
    server = subprocess.Popen([PY, "-m", "service"], cwd=ROOT, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready").status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    server.kill()
    raise RuntimeError("the service did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--port", type=int, default=8130)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="train-bench-"))
    try:
        models = tmp / "models"
        cli_default, cli_curve = cli_fit(models, "cnn", {})
        cli_one, cli_curve_one = cli_fit(models, "cnn_1thread", {"OMP_NUM_THREADS": "1"})
        server = start_service(tmp, args.port)
        try:
            base = f"http://127.0.0.1:{args.port}"
            with httpx.Client(base_url=base, timeout=30) as client:
                spec = {"family": "cnn", "recipe": "lecture", "name": "cnn_job",
                        "hyperparameters": {"seed": 0}}  # fmt: skip
                job = wait_job(client, client.post("/train", json=spec).json()["id"])
                curve = client.get(f"/train/{job['id']}/curve.json").json()["loss_curve"]
                diff = max(abs(a - b) for a, b in zip(curve, cli_curve, strict=True))
                same = curve == cli_curve_one
                job_s = job["metrics"]["fit_seconds"]
                print(f"CNN lecture fit, CLI default threads: {cli_default:.2f} s")
                print(f"CNN lecture fit, CLI 1 thread:        {cli_one:.2f} s")
                ratios = f"{job_s / cli_default:.2f}x CLI default, {job_s / cli_one:.2f}x 1 thread"
                print(f"CNN lecture fit, POST /train job:     {job_s:.2f} s ({ratios})")
                print(f"loss curves: {len(curve)} points; max |job - CLI default| = {diff:.3g}; "
                      f"identical to the 1-thread CLI curve: {same}")  # fmt: skip

                idle = asyncio.run(throughput(base, args.seconds))
                long = {**spec, "name": "cnn_long", "hyperparameters": {"iterations": 10000}}
                long_id = client.post("/train", json=long).json()["id"]
                while client.get(f"/train/{long_id}").json()["progress"]["iteration"] < 5:
                    time.sleep(0.2)
                busy = asyncio.run(throughput(base, args.seconds))
                client.delete(f"/train/{long_id}")
                print(f"predict, 1 vector, 8 clients: idle {idle:.0f}/s, "
                      f"while a CNN job trains {busy:.0f}/s ({busy / idle:.2f}x)")  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=60)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
