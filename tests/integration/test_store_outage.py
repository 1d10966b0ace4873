"""The job store's database going away for real (a TCP hop to PostgreSQL killed with
SIGKILL, then started again): requests get 503 with ``Retry-After`` while it is gone, and a
running job ends ``failed`` with the connection's own error once it is back.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from service.http.app import create_app
from service.jobs.liveness import WORKER_LOST
from service.jobs.worker import RETRY_DELAYS_S
from tests.integration.test_jobs_postgres import pg_url  # noqa: F401  # the schema fixture
from tests.service.jobs.conftest import LONG_CNN, job_settings, running_with_steps, wait_until
from tests.service.live import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


class Hop:
    """The forwarder process between the service and PostgreSQL."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.port = free_port()
        self.target = (target_host, target_port)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.tcp_proxy",
                str(self.port),
                *map(str, self.target),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == b"listening"
        self.process.stdout.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def hop_url(pg_url: str) -> Iterator[tuple[Hop, str]]:  # noqa: F811  # pytest's fixture by name
    url = make_url(pg_url)
    hop = Hop(url.host or "127.0.0.1", url.port or 5432)
    hop.start()
    try:
        yield hop, url.set(port=hop.port).render_as_string(hide_password=False)
    finally:
        if hop.process is not None and hop.process.poll() is None:
            hop.kill()


def test_a_lost_database_is_503_and_the_running_job_fails_with_the_cause(
    hop_url: tuple[Hop, str], tmp_path: Path, models_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Clients are told what failed, never where the database is (host, port, user); the
    log has the full error, once for the whole outage, not a traceback per request."""
    hop, url = hop_url
    where = str(hop.port)
    settings = job_settings(tmp_path, models_dir, database_url=url)
    with TestClient(create_app(settings)) as client:
        job_id = client.post("/train", json=LONG_CNN).json()["id"]
        wait_until(client, job_id, running_with_steps)

        hop.kill()  # every connection reset, new ones refused
        for method, path in (("POST", "/train"), ("GET", f"/train/{job_id}"), ("GET", "/train")):
            answer = client.request(method, path, json=LONG_CNN if method == "POST" else None)
            assert answer.status_code == 503, (method, path, answer.text)
            assert answer.headers["Retry-After"] == "10"
            assert answer.json()["error"]["code"] == "store_unavailable"
            assert answer.json()["error"]["message"].startswith("database unavailable")
            assert where not in answer.text
            assert "postgres" not in answer.text
        time.sleep(sum(RETRY_DELAYS_S) + 2)  # longer than the worker's retries

        hop.start()
        back = time.monotonic()
        job = wait_until(client, job_id, lambda b: b["status"] == "failed", 30)
        assert time.monotonic() - back < 5
        assert job["error"] != WORKER_LOST
        assert job["error"].startswith("database unavailable"), job["error"]
        assert where not in job["error"]
        assert "postgres" not in job["error"]
        logged = [r for r in caplog.records if "job store unavailable" in r.getMessage()]
        assert len(logged) == 1
        assert where in logged[0].getMessage()
        assert not any(r.exc_info for r in caplog.records if r.name.startswith("service.http"))
        assert client.get("/health/ready").status_code == 200
