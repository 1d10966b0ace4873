"""Concurrent alias moves from two real API processes sharing one database (PostgreSQL, and
a SQLite file for comparison) end in one consistent state that both processes serve."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.databases import BACKENDS, database_url
from tests.service.conftest import write_artifact
from tests.service.test_registry import lit

ROOT = Path(__file__).resolve().parents[2]
MOVES = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def api_process(tmp: Path, url: str) -> Iterator[str]:
    """``python -m service`` on a free port over ``url``; its base URL once it is ready."""
    port = _free_port()
    env = {
        **os.environ,
        "DIGITS_DATABASE_URL": url,
        "DIGITS_MODELS_DIR": str(tmp / "models"),
        "DIGITS_VERSIONS_DIR": str(tmp / "versions"),
        "DIGITS_DEFAULT_MODEL": "m",
        "DIGITS_DEVICE": "cpu",
        "DIGITS_RELOAD_INTERVAL_S": "0.2",
        "DIGITS_LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-m", "service", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "the API process exited"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the API process never became ready"
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@pytest.mark.integration
@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_moves_from_two_processes_end_consistent(backend: str, tmp_path: Path) -> None:
    """Two processes each move ``production`` 20 times at once; afterwards the history is one
    chain (each move starts where the previous one ended), the alias names the last move's
    version, every accepted move is recorded once, and both processes serve that version."""
    for version in (1, 2, 3):
        write_artifact(tmp_path / "models", "m", version, lit(version))
    with (
        database_url(backend, tmp_path) as url,
        api_process(tmp_path, url) as first,
        api_process(tmp_path, url) as second,
    ):
        barrier = threading.Barrier(2)
        moved: list[bool] = []

        def mover(base: str, offset: int) -> None:
            with httpx.Client(base_url=base, timeout=30) as client:
                barrier.wait()
                for i in range(MOVES):
                    body = {"version": (i + offset) % 3 + 1, "reason": f"{base} move {i}"}
                    response = client.put("/models/m/aliases/production", json=body)
                    assert response.status_code == 200, response.text
                    moved.append(response.json()["moved"])

        threads = [
            threading.Thread(target=mover, args=(b, o)) for b, o in ((first, 1), (second, 2))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert len(moved) == 2 * MOVES

        moves = httpx.get(f"{first}/models/m/history", params={"limit": 1000}).json()["moves"]
        chain = list(reversed(moves))  # oldest first
        assert chain[0]["kind"] == "initial"
        assert len(chain) == 1 + sum(moved)
        for before, after in itertools.pairwise(chain):
            assert after["from_version"] == before["to_version"]
            assert after["from_version"] != after["to_version"]
        final = str(chain[-1]["to_version"])
        for base in (first, second):
            _wait_serving(base, final)


def _wait_serving(base: str, version: str) -> None:
    """``base`` answers unpinned requests with ``version`` within 5 s (its reload interval)."""
    deadline = time.monotonic() + 5
    while True:
        answer = httpx.post(f"{base}/models/m/predict", json={"pixels": [0] * 64}).json()
        if answer["version"] == version:
            return
        assert time.monotonic() < deadline, f"{base} still serves {answer['version']}"
        time.sleep(0.1)
