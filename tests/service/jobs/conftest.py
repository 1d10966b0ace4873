"""Fixtures of the job tests: one app per module whose worker processes are reused (a
spawned worker imports torch once, ~2-3 s), and helpers that wait without sleeping blindly."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from service.http.app import create_app
from service.http.routes.job_request import JobSpec
from service.jobs.records import JobRecord
from service.jobs.store import JobStore
from service.jobs.tables import jobs_table
from service.settings import Settings
from tests.conftest import make_settings

#: A fit that cannot end during a test: for cancel, queue and kill tests (six fits of 15,000
#: steps, under the default job cost limit).
LONG_CNN = {
    "family": "cnn",
    "hyperparameters": {"iterations": 15000, "acc_step": 1000, "channels": [16, 32]},
}
#: ``job_stall_s`` of the shared apps: a stalled job fails within seconds, while a worker
#: that is slow to start on a loaded machine still counts as progressing.
TEST_STALL_S = 20.0
#: A fit that ends in well under a second.
SHORT_LOGISTIC = {"family": "logistic", "hyperparameters": {"iterations": 150, "acc_step": 50}}


def job_settings(tmp: Path, models: Path, **overrides: Any) -> Settings:
    """Embedded-default settings on ``tmp``: SQLite job store, one worker, one queued job."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp / 'jobs.db'}",
        "max_running_jobs": 1,
        "max_queued_jobs": 1,
        **overrides,
    }
    return make_settings(models, **values)


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory, tiny_models: Path) -> Path:
    """A temporary folder with a private copy of ``tiny_models`` under ``models/``."""
    root = tmp_path_factory.mktemp("jobs")
    shutil.copytree(tiny_models, root / "models")
    return root


@pytest.fixture(scope="module")
def jobs_client(module_tmp: Path) -> Iterator[TestClient]:
    """One app for the module: its worker process is spawned once and reused."""
    settings = job_settings(module_tmp, module_tmp / "models", job_stall_s=TEST_STALL_S)
    with TestClient(create_app(settings)) as client:
        yield client


def wait_job(client: TestClient, job_id: str, timeout: float = 60) -> JobRecord:
    """The job once it has ended and its model is served (``TimeoutError`` otherwise)."""
    wait_until(client, job_id, lambda body: body["status"] in FINISHED, timeout)
    jobs = client.app.state.jobs  # type: ignore[attr-defined]
    job: JobRecord = client.portal.call(jobs.get, job_id)  # type: ignore[attr-defined]
    client.portal.call(jobs.serve, job)  # type: ignore[attr-defined]
    return job


FINISHED = ("succeeded", "failed", "cancelled")


def wait_until(
    client: TestClient, job_id: str, check: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    """Poll ``GET /train/{id}`` (every 50 ms, at most ``timeout`` s) until ``check`` holds."""
    for _ in range(int(timeout / 0.05)):
        body: dict[str, Any] = client.get(f"/train/{job_id}").json()
        if check(body):
            return body
        client.portal.call(anyio.sleep, 0.05)  # type: ignore[attr-defined]
    raise TimeoutError(f"job {job_id} never satisfied the check; last state {body['status']}")


def running_with_steps(body: dict[str, Any]) -> bool:
    """The job is running and has recorded at least one step."""
    return body["status"] == "running" and body["progress"]["iteration"] > 0


def gone(pid: int, wait: float = 10.0) -> bool:
    """Whether process ``pid`` is gone (not even waiting to be reaped) within ``wait`` s."""
    deadline = time.monotonic() + wait
    while True:
        try:
            if "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text():
                return True
        except FileNotFoundError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


@contextlib.contextmanager
def stop_running_worker(client: TestClient, job_id: str) -> Iterator[int]:
    """``SIGSTOP`` the process running ``job_id`` once it has made steps (a hang inside a
    step); yields its pid, and lets it go on (``SIGCONT``) on the way out if it is still there,
    so a failed test's app can shut down."""
    wait_until(client, job_id, running_with_steps)
    pid = client.portal.call(client.app.state.jobs.get, job_id).worker_pid  # type: ignore[attr-defined]
    assert pid is not None
    assert pid != os.getpid()
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        if not gone(pid, wait=0):
            os.kill(pid, signal.SIGCONT)


def cancel_and_wait(client: TestClient, job_id: str) -> None:
    """Cancel a job if it has not ended, and wait for it to end."""
    response = client.delete(f"/train/{job_id}")
    assert response.status_code in (200, 202, 409)
    wait_job(client, job_id, timeout=30)


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the loop uvicorn uses)."""
    return "asyncio"


def age_heartbeat(store: JobStore, job_id: str, age: float) -> None:
    """Make the last heartbeat of ``job_id`` ``age`` seconds old."""
    with store.engine.begin() as conn:
        conn.execute(
            update(jobs_table)
            .where(jobs_table.c.id == job_id)
            .values(heartbeat_at=time.time() - age)
        )


def claim_concurrently(stores: list[JobStore], claimers: int = 8) -> list[list[str]]:
    """Run ``claimers`` threads (alternating over ``stores``) that claim queued jobs until none
    is left; the ids each claimer (owner ``owner-<i>``) got."""
    claims: list[list[str]] = [[] for _ in range(claimers)]

    def claimer(store: JobStore, mine: list[str], owner: str) -> None:
        while (job_id := store.claim_next(owner)) is not None:
            mine.append(job_id)

    threads = [
        threading.Thread(target=claimer, args=(stores[i % len(stores)], claims[i], f"owner-{i}"))
        for i in range(claimers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return claims


def submit_concurrently(url: str, submitters: int = 20, max_queued: int = 16) -> int:
    """Start ``submitters`` threads at once, each on its own store (its own connections, as
    separate processes would be), each creating one job; how many were queued."""
    stores = [JobStore.open(url) for _ in range(submitters)]
    barrier = threading.Barrier(submitters)
    queued: list[bool] = []

    def submitter(store: JobStore) -> None:
        barrier.wait()
        queued.append(
            store.create(JobSpec(family="logistic").resolve(), max_queued=max_queued) is not None
        )

    threads = [threading.Thread(target=submitter, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for store in stores:
        store.close()
    assert len(queued) == submitters, "a submitter raised or hung"
    return sum(queued)
