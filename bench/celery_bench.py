"""Celery backend measurements on this machine (printed, not asserted).

1. Scale-out: N queued CNN jobs run by 1 Celery worker, then by 2; the ratio of the times
   (the target is <= 0.6).
2. Worker death: SIGKILL mid-job of the pool process, then of the whole worker (what a
   container kill does); how long until the job ends (the target is < 60 s), whether the
   other queued job still succeeds, and whether the API kept answering meanwhile.

The processes are the ones of docker-compose.yml (the API and worker commands read from it),
on this machine's PostgreSQL and Redis, each run on a fresh database and Redis number.

    python bench/celery_bench.py [--jobs 4] [--iterations 2000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.stack import ADMIN, Stack, running_stack, unreachable_reason  # noqa: E402

FINAL = ("succeeded", "failed", "cancelled")
#: Readiness needs a model; without shipped models the bench waits for liveness only.
PROBE = "/health/ready" if any((ROOT / "models").glob("*/*/manifest.json")) else "/health/live"


def submit(api: str, iterations: int) -> str:
    body = {"family": "cnn", "hyperparameters": {"iterations": iterations}}
    response = httpx.post(f"{api}/train", json=body, headers=ADMIN, timeout=10)
    response.raise_for_status()
    return str(response.json()["id"])


def job(api: str, job_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{api}/train/{job_id}", timeout=10).json())


def wait_all(api: str, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    deadline, done = time.monotonic() + timeout, {}
    while len(done) < len(ids) and time.monotonic() < deadline:
        for job_id in ids:
            if job_id not in done and (found := job(api, job_id))["status"] in FINAL:
                done[job_id] = found
        time.sleep(0.25)
    return done


def queued_jobs(models: Path, logs: Path, workers: int, jobs: int, iterations: int) -> float:
    """Seconds from submitting ``jobs`` jobs to the last one ending, with ``workers`` workers."""
    with running_stack(models, logs) as stack:
        api = stack.start_api()
        for _ in range(workers):
            stack.start_worker()
        stack.wait_ready(probe=PROBE)
        time.sleep(3)  # let the workers finish starting (pool process, training data loaded)
        start = time.monotonic()
        ids = [submit(api, iterations) for _ in range(jobs)]
        done = wait_all(api, ids, timeout=60 * jobs)
        elapsed = time.monotonic() - start
        statuses = sorted(d["status"] for d in done.values())
        print(f"  {workers} worker(s): {jobs} jobs in {elapsed:.1f} s; statuses {statuses}")
        return elapsed


class Prober(threading.Thread):
    """Asks /health/live and GET /train every 0.2 s; counts failures."""

    def __init__(self, api: str) -> None:
        super().__init__(daemon=True)
        self.api, self.ok, self.failed, self.worst = api, 0, 0, 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            start = time.monotonic()
            try:
                httpx.get(f"{self.api}/health/live", timeout=5).raise_for_status()
                httpx.get(f"{self.api}/train", timeout=5).raise_for_status()
                self.ok += 1
            except httpx.HTTPError:
                self.failed += 1
            self.worst = max(self.worst, time.monotonic() - start)
            time.sleep(0.2)


def kill_mid_job(stack: Stack, api: str, victim: str, iterations: int) -> None:
    """One worker runs a long job, a second job waits; SIGKILL mid-job, time the outcome."""
    worker = stack.start_worker()
    stack.wait_ready(probe=PROBE)
    long_id = submit(api, 20_000)
    next_id = submit(api, iterations)
    while job(api, long_id)["progress"]["iteration"] == 0:
        time.sleep(0.2)
    from service.db import make_engine
    from service.jobs.store import JobStore

    store = JobStore(make_engine(stack.database_url))
    pid = store.get(long_id).worker_pid
    store.close()
    assert pid is not None
    prober = Prober(api)
    prober.start()
    killed = time.monotonic()
    if victim == "pool process":
        os.kill(pid, signal.SIGKILL)
    else:  # the worker and its pool: what `docker kill` does to a worker container
        os.killpg(worker.pid, signal.SIGKILL)
        stack.start_worker()  # compose's restart policy
    ended = wait_all(api, [long_id], timeout=120)
    took = time.monotonic() - killed
    other = wait_all(api, [next_id], timeout=120)
    prober.stop.set()
    prober.join()
    found = ended.get(long_id, {"status": "still running", "error": None})
    print(
        f"  SIGKILL {victim}: job {found['status']} after {took:.1f} s ({found['error']}); "
        f"next job {other.get(next_id, {}).get('status', 'not finished')}; API answered "
        f"{prober.ok} probes, {prober.failed} failed, slowest {prober.worst * 1000:.0f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=2000, help="CNN default recipe: 2000")
    args = parser.parse_args(argv)
    reason = unreachable_reason()
    if reason:
        print(f"skipped: {reason}")
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="celery-bench-"))
    models = tmp / "models"
    shipped = ROOT / "models"
    if any(shipped.glob("*/*/manifest.json")):
        shutil.copytree(shipped, models)
    else:
        models.mkdir()
    print(f"machine: {os.cpu_count()} CPUs; CNN default recipe, {args.iterations} iterations")
    print(f"1. {args.jobs} queued CNN jobs")
    one = queued_jobs(models, tmp / "one", 1, args.jobs, args.iterations)
    two = queued_jobs(models, tmp / "two", 2, args.jobs, args.iterations)
    print(f"  ratio 2 workers / 1 worker: {two / one:.2f} (target <= 0.6)")
    print("2. worker death")
    for victim in ("pool process", "whole worker"):
        with running_stack(models, tmp / victim.replace(" ", "-")) as stack:
            api = stack.start_api()
            kill_mid_job(stack, api, victim, args.iterations)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
