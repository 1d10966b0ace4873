"""A real S3 server for the version store's tests: moto in server mode, in a process of its
own (so a test can SIGKILL it), and the TCP proxy of ``tests/integration/tcp_proxy.py`` to cut
the connections to it while it keeps its objects."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.service.live import free_port

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "digits-versions"
#: What every process of a test needs to reach the server (the test's environment too).
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


class Server:
    """A process listening on ``port`` that a test starts, kills (SIGKILL) and starts again
    on the same port."""

    def __init__(self, argv: list[str], port: int) -> None:
        self.argv, self.port = argv, port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port, self.process)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


class Moto(Server):
    """moto's S3 server on a free port, with the bucket ``BUCKET`` made at each start (a
    restarted moto has lost every object)."""

    def __init__(self) -> None:
        port = free_port()
        script = Path(sys.executable).with_name("moto_server")
        super().__init__([str(script), "-H", "127.0.0.1", "-p", str(port)], port)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()
        self.client().create_bucket(Bucket=BUCKET)

    def client(self) -> Any:
        return boto3.session.Session().client("s3", endpoint_url=self.endpoint, **_lower())

    def objects(self) -> list[str]:
        reply = self.client().list_objects_v2(Bucket=BUCKET)
        return sorted(item["Key"] for item in reply.get("Contents", []))


def proxy_to(moto: Moto) -> Server:
    """A TCP proxy to ``moto`` on a port of its own (not started)."""
    port = free_port()
    argv = [sys.executable, "-m", "tests.integration.tcp_proxy", str(port), "127.0.0.1"]
    return Server([*argv, str(moto.port)], port)


def _lower() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
    }


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    server.start()
    try:
        yield server
    finally:
        server.kill()


def point_at(monkeypatch: pytest.MonkeyPatch, port: int) -> dict[str, str]:
    """Point this process's (and its children's) AWS variables at ``127.0.0.1:port``;
    returns them."""
    values = {**CREDENTIALS, "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return values
