"""The service as a user runs it: ``python -m service`` in a process of its own, on a free
port, a models folder and a job database given by the test, its output kept in a log file."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveService:
    """A running ``python -m service`` process and where to reach it."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` to the process and wait for its exit code."""
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


def wait_ready(service: LiveService, timeout: float = 90.0) -> None:
    """Wait until ``/health/ready`` answers 200; fail with the log if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"the service exited early:\n{service.output()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{service.url}/health/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.2)  # a process on another port: nothing to wait on but the socket
    raise TimeoutError(f"not ready after {timeout} s:\n{service.output()}")


@contextlib.contextmanager
def running_service(
    models_dir: Path,
    workdir: Path,
    settings: dict[str, str] | None = None,
    *,
    without: tuple[str, ...] = (),
) -> Iterator[LiveService]:
    """``python -m service`` on ``models_dir`` with its job database and log in ``workdir``
    (also its working directory, so no ``.env`` of the checkout applies), plus ``settings``
    (``DIGITS_*`` variables; of the test's own environment only ``DIGITS_RUNTIME``, which
    the suites run under each runtime set); stopped after. ``without`` names packages the
    process cannot import (as on an install that lacks them: ``("torch",)`` is the API
    install, ``digits-serve[api]``)."""
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("DIGITS_") or k == "DIGITS_RUNTIME"
    }
    env.update(
        DIGITS_DATABASE_URL=f"sqlite:///{workdir / 'jobs.db'}",
        DIGITS_DEVICE="cpu",
        DIGITS_RELOAD_INTERVAL_S="0",
        PYTHONUNBUFFERED="1",
    )
    env.update(settings or {})
    argv = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)]
    if without:  # None in sys.modules: any import of the package fails, find_spec says None
        block = f"import runpy, sys; sys.modules.update(dict.fromkeys({list(without)!r}))"
        argv[1:3] = ["-c", f"{block}; runpy.run_module('service', run_name='__main__')"]
    log = workdir / "service.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*argv, "--models-dir", str(models_dir)],
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    service = LiveService(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_ready(service)
        yield service
    finally:
        if process.poll() is None:
            try:
                service.stop(signal.SIGTERM, timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def running_copy(
    models_dir: Path, workdir: Path, settings: dict[str, str] | None = None
) -> Iterator[LiveService]:
    """``running_service`` on a copy of ``models_dir`` in ``workdir`` (the test may change it)."""
    shutil.copytree(models_dir, workdir / "models")
    with running_service(workdir / "models", workdir, settings) as service:
        yield service
