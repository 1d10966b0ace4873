"""The service as a real process: its training workers live and die with it.

``python -m service`` runs in a subprocess on a temporary folder; the faults are real
signals (``kill -9`` of the API, Ctrl-C to its process group).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.db import make_engine
from service.jobs.store import JobStore
from tests.service.jobs.conftest import LONG_CNN

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


def poll(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """``check()`` once it is truthy (tried every 50 ms); fails after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def gone(pid: int) -> bool:
    """Whether process ``pid`` has exited (a zombie awaiting its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def children(pid: int) -> list[int]:
    """The pids of the live child processes of ``pid``."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with_kids = (task / "children").read_text().split()
        found.extend(int(k) for k in with_kids)
    return [k for k in found if not gone(k)]


@pytest.fixture
def service(tmp_path: Path, models_dir: Path) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """A ``python -m service`` process on ``tmp_path`` (its own session), its base URL and
    its job store URL; killed afterwards if a test left it running."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    database_url = f"sqlite:///{tmp_path / 'jobs.db'}"
    env = {
        **os.environ,
        "DIGITS_MODELS_DIR": str(models_dir),
        "DIGITS_DATABASE_URL": database_url,
        "DIGITS_PORT": str(port),
        "DIGITS_DEVICE": "cpu",
        "DIGITS_RELOAD_INTERVAL_S": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "service"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def live() -> bool:
        try:
            return httpx.get(f"{base}/health/live", timeout=1).status_code == 200
        except httpx.TransportError:
            assert process.poll() is None, "the service exited at start-up"
            return False

    try:
        poll(live, 60, "the service to listen")
        yield process, base, database_url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)


def test_kill_9_of_the_api_stops_its_training_worker_within_5_s(
    service: tuple[subprocess.Popen[str], str, str],
) -> None:
    """A worker whose API process was SIGKILLed mid-fit stops within 5 s, not trains on."""
    process, base, database_url = service
    job_id = httpx.post(f"{base}/train", json=LONG_CNN, timeout=10).json()["id"]
    store = JobStore(make_engine(database_url))
    job = poll(
        lambda: (j := store.get(job_id)).iteration > 0 and j.worker_pid and j,
        60,
        "the job to make progress",
    )
    store.close()
    assert not gone(job.worker_pid)

    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    killed = time.monotonic()
    poll(lambda: gone(job.worker_pid), 5, f"worker {job.worker_pid} to stop")
    assert time.monotonic() - killed < 5


def spawned_workers(pid: int) -> list[int]:
    """The live children of ``pid`` that are multiprocessing's spawned workers."""
    return [k for k in children(pid) if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()]


def test_kill_9_of_the_api_while_its_worker_starts_stops_the_worker(
    service: tuple[subprocess.Popen[str], str, str],
) -> None:
    """The API SIGKILLed while its new worker is still importing (before the worker could
    arm the kernel's parent-death signal): the worker stops within 5 s of its initializer
    running, not lives on re-parented."""
    process, base, _ = service
    httpx.post(f"{base}/train", json=LONG_CNN, timeout=10).raise_for_status()
    [worker] = poll(lambda: spawned_workers(process.pid), 30, "the worker process to spawn")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    # its imports (torch) take seconds on a busy machine: then 5 s to notice the orphaning
    poll(lambda: gone(worker), 30, f"orphaned worker {worker} to stop")


def test_ctrl_c_stops_the_service_and_its_idle_worker_without_a_traceback(
    service: tuple[subprocess.Popen[str], str, str],
) -> None:
    """A service that has run no job is one process (no idle training worker competes with
    requests); after a job its worker stays, idle; Ctrl-C (SIGINT to the whole process
    group) ends both cleanly: exit status 0, no traceback, no ``KeyboardInterrupt`` printed."""
    process, base, _ = service
    time.sleep(3)  # the old launcher started its workers 2 s after start-up
    assert children(process.pid) == []
    body = {"family": "logistic", "hyperparameters": {"iterations": 20}}
    job_id = httpx.post(f"{base}/train", json=body, timeout=10).json()["id"]
    poll(
        lambda: httpx.get(f"{base}/train/{job_id}", timeout=5).json()["status"] == "succeeded",
        120,
        "the short job to succeed",
    )
    workers = children(process.pid)
    assert workers, "the job's worker is kept for the next job"
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "Traceback" not in output
    assert "KeyboardInterrupt" not in output
    poll(lambda: all(gone(pid) for pid in workers), 5, f"workers {workers} to exit")
