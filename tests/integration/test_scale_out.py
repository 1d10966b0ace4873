"""The compose deployment's processes for real: two API replicas and Celery workers started
with the commands of ``docker-compose.yml``, on this machine's PostgreSQL and Redis."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.stack import ADMIN, Stack, running_stack, unreachable_reason

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SEVEN = [0, 0, 7, 16, 16, 16, 8, 0, 0, 0, 5, 8, 8, 14, 10, 0, 0, 0, 0, 0, 4, 15, 2, 0]
SEVEN += [0, 0, 0, 2, 14, 12, 0, 0, 0, 0, 0, 9, 16, 16, 8, 0, 0, 0, 0, 13, 6, 0, 0, 0]
SEVEN += [0, 0, 5, 13, 0, 0, 0, 0, 0, 0, 9, 8, 0, 0, 0, 0]
SHORT_JOB = {"family": "cnn", "hyperparameters": {"iterations": 60, "acc_step": 30}}
#: Six fits (the out-of-fold calibration) of 10,000 steps: long, and under the cost limit.
LONG_JOB = {"family": "cnn", "hyperparameters": {"iterations": 10_000, "acc_step": 1000}}


@pytest.fixture(scope="module")
def services() -> None:
    """PostgreSQL and Redis answer, or the module skips (fails under CI=true)."""
    reason = unreachable_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs PostgreSQL and Redis: {reason}")
        pytest.skip(reason)


@pytest.fixture
def stack_factory(
    services: None, tmp_path: Path, tiny_models: Path
) -> Iterator[Callable[..., Stack]]:
    """Builds a stack on a copy of the tiny models, with a fresh database and Redis number."""
    contexts: list[Any] = []

    def make(**extra_env: str) -> Stack:
        models = tmp_path / f"models-{len(contexts)}"
        shutil.copytree(tiny_models, models)
        context = running_stack(models, tmp_path / f"logs-{len(contexts)}", **extra_env)
        contexts.append(context)
        return context.__enter__()

    yield make
    for context in reversed(contexts):
        context.__exit__(None, None, None)


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.3) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def submit(api: str, body: dict[str, Any]) -> str:
    response = httpx.post(f"{api}/train", json=body, headers=ADMIN, timeout=10)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def job(api: str, job_id: str) -> dict[str, Any]:
    response = httpx.get(f"{api}/train/{job_id}", timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def finished(api: str, job_id: str, timeout: float) -> dict[str, Any]:
    """The job once it has ended (any final status)."""

    def check() -> dict[str, Any] | None:
        found = job(api, job_id)
        return found if found["status"] in ("succeeded", "failed", "cancelled") else None

    return dict(wait_for(check, timeout, f"job {job_id} to end", every=0.5))


def running(api: str, job_id: str, timeout: float = 60) -> dict[str, Any]:
    """The job once its fit has made progress."""

    def check() -> dict[str, Any] | None:
        found = job(api, job_id)
        assert found["status"] in ("queued", "running"), found
        return found if found["progress"]["iteration"] > 0 else None

    return dict(wait_for(check, timeout, f"job {job_id} to make progress"))


def test_version_trained_through_one_replica_is_served_by_the_other(
    stack_factory: Callable[..., Stack],
) -> None:
    """A job submitted to API 1 runs on the Celery worker; API 2 then predicts with its version."""
    stack = stack_factory()
    api1, api2 = stack.start_api(), stack.start_api()
    stack.start_worker()
    stack.wait_ready()

    job_id = submit(api1, SHORT_JOB)
    done = finished(api1, job_id, timeout=120)
    assert done["status"] == "succeeded", done
    assert done["model"] == {"name": "cnn", "version": 2}
    assert job(api2, job_id)["status"] == "succeeded"  # one shared store

    def served_by_api2() -> dict[str, Any] | None:
        assert httpx.get(f"{api2}/health/ready", timeout=5).status_code == 200
        response = httpx.post(
            f"{api2}/models/cnn/predict", params={"version": 2}, json={"pixels": SEVEN}, timeout=5
        )
        return response.json() if response.status_code == 200 else None

    body = wait_for(served_by_api2, timeout=30, what="API 2 to serve cnn v2")
    assert body["version"] == "2"
    assert len(body["predictions"][0]["probabilities"]) == 10


def test_cancel_sent_to_one_replica_stops_the_worker(stack_factory: Callable[..., Stack]) -> None:
    """DELETE on API 2 sets the cancel flag in the store; the fit stops, the job is cancelled."""
    stack = stack_factory()
    api1, api2 = stack.start_api(), stack.start_api()
    stack.start_worker()
    stack.wait_ready()

    job_id = submit(api1, LONG_JOB)
    running(api2, job_id)
    cancelled = httpx.delete(f"{api2}/train/{job_id}", headers=ADMIN, timeout=10)
    assert cancelled.status_code in (200, 202)
    done = finished(api1, job_id, timeout=30)
    assert done["status"] == "cancelled", done
    assert done["progress"]["iteration"] < 20_000


def test_queue_bound_counts_queued_rows_of_the_shared_store(
    stack_factory: Callable[..., Stack],
) -> None:
    """With no worker and DIGITS_MAX_QUEUED_JOBS=1, the second job is refused on either replica."""
    stack = stack_factory(DIGITS_MAX_QUEUED_JOBS="1")
    api1, api2 = stack.start_api(), stack.start_api()
    stack.wait_ready()

    submit(api1, SHORT_JOB)
    refused = httpx.post(f"{api2}/train", json=SHORT_JOB, headers=ADMIN, timeout=10)
    assert refused.status_code == 429, refused.text


def _pool_child(worker_pid: int, job_pid: int) -> bool:
    status = Path(f"/proc/{job_pid}/status").read_text()
    return f"PPid:\t{worker_pid}\n" in status


@pytest.mark.parametrize("victim", ["pool-process", "whole-worker"])
def test_killed_worker_fails_its_job_within_60_s(
    stack_factory: Callable[..., Stack], victim: str
) -> None:
    """SIGKILL mid-job (of the pool process, or of the whole worker as a container kill does)
    ends the job failed within 60 s; the API keeps answering and the next job still runs."""
    stack = stack_factory(DIGITS_JOB_STALL_S="20")
    api = stack.start_api()
    worker = stack.start_worker()
    stack.wait_ready()

    job_id = submit(api, LONG_JOB)
    running(api, job_id)
    pid = _job_pid(stack, job_id)
    assert _pool_child(worker.pid, pid)
    killed_at = time.monotonic()
    if victim == "pool-process":
        os.kill(pid, signal.SIGKILL)
    else:
        os.killpg(worker.pid, signal.SIGKILL)
        stack.start_worker()

    def ended() -> dict[str, Any] | None:
        assert httpx.get(f"{api}/health/live", timeout=5).status_code == 200
        found = job(api, job_id)
        return found if found["status"] in ("succeeded", "failed", "cancelled") else None

    done = wait_for(ended, timeout=60, what="the killed job to end", every=0.5)
    assert done["status"] == "failed", done
    assert done["error"].startswith("no progress for "), done["error"]
    assert time.monotonic() - killed_at < 60

    after = finished(api, submit(api, SHORT_JOB), timeout=120)
    assert after["status"] == "succeeded", after


def _job_pid(stack: Stack, job_id: str) -> int:
    """The pid of the process running ``job_id``, read from the shared store."""
    from service.db import make_engine
    from service.jobs.store import JobStore

    store = JobStore(make_engine(stack.database_url))
    try:
        found = wait_for(lambda: store.get(job_id).worker_pid, 30, "the job's worker pid")
        return int(found)
    finally:
        store.close()
