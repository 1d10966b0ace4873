"""The scaled-out stack of docker-compose.yml, run as plain processes on this machine.

The API and worker commands and their environment are read from ``docker-compose.yml`` (so
what is tested cannot drift from what is deployed); only what differs between a container
and this machine is replaced: the port, the PostgreSQL and Redis addresses, the models folder.
Each stack gets its own PostgreSQL database and an empty Redis database number, both dropped
afterwards. Used by the integration tests and by ``bench/celery_bench.py``.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PG_ADMIN_URL = os.environ.get("DIGITS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
#: Settings that differ between a container and this machine; everything else comes from
#: the compose file as written.
MACHINE_KEYS = (
    "DIGITS_DATABASE_URL",
    "DIGITS_CELERY_BROKER_URL",
    "DIGITS_MODELS_DIR",
    "DIGITS_VERSIONS_DIR",
    "DIGITS_ADMIN_API_KEY_FILE",
)
#: The admin key of every stack (the compose file reads it from a Docker secret file).
ADMIN_KEY = "integration-admin-key"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def unreachable_reason() -> str | None:
    """Why PostgreSQL or Redis cannot be used here (``None`` when both answer)."""
    import psycopg
    import redis

    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {exc}"
    try:
        redis.Redis(REDIS_HOST, REDIS_PORT, socket_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis at {REDIS_HOST}:{REDIS_PORT} is unreachable: {exc}"
    return None


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty PostgreSQL database; yields its SQLAlchemy URL and drops it afterwards."""
    import psycopg

    name = f"digits_it_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    admin = psycopg.conninfo.conninfo_to_dict(PG_ADMIN_URL)
    user, host, port = admin.get("user", "postgres"), admin.get("host"), admin.get("port", 5432)
    try:
        yield f"postgresql+psycopg://{user}@{host}:{port}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_redis_db() -> Iterator[str]:
    """An empty Redis database number (1..15); yields its URL and flushes it afterwards."""
    import redis

    numbers = list(range(1, 16))
    random.shuffle(numbers)
    for number in numbers:
        client = redis.Redis(REDIS_HOST, REDIS_PORT, db=number)
        # Claim it with a marker key so two stacks started at once do not share a number.
        if client.dbsize() == 0 and client.set("digits-it-claim", "1", nx=True):
            break
    else:
        raise RuntimeError("no empty Redis database number in 1..15")
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{number}"
    finally:
        client.flushdb()
        client.close()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with the default (this machine sets none of them)."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def compose_service(name: str) -> tuple[list[str], dict[str, str]]:
    """The command and ``DIGITS_*`` environment of a compose service, as written."""
    service: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())["services"][name]
    env = {key: _interpolate(str(value)) for key, value in service["environment"].items()}
    missing = [key for key in MACHINE_KEYS if key not in env]
    assert not missing, f"{name} in docker-compose.yml no longer sets {missing}"
    return list(service["command"]), env


def local_argv(command: list[str], port: int | None = None) -> list[str]:
    """A compose command with this interpreter for ``python``/``celery`` and another port."""
    argv = list(command)
    if argv[0] == "python":
        argv[:1] = [sys.executable]
    elif argv[0] == "celery":
        argv[:1] = [sys.executable, "-m", "celery"]
    if port is not None:
        argv[argv.index("--port") + 1] = str(port)
    return argv


@dataclass
class Stack:
    """API processes and Celery workers started from the compose commands."""

    database_url: str
    broker_url: str
    models_dir: Path
    logs: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    apis: list[str] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _files: list[IO[bytes]] = field(default_factory=list)

    @property
    def versions_dir(self) -> Path:
        """Where the stack's processes publish versions (a volume shared by all under compose)."""
        return self.logs / "versions"

    def env(self, service: str) -> dict[str, str]:
        _, compose_env = compose_service(service)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITS_")}
        env.update(compose_env)
        key_file = self.logs / "admin_api_key"
        if not key_file.exists():
            self.logs.mkdir(parents=True, exist_ok=True)
            key_file.write_text(f"{ADMIN_KEY}\n")
        env.update(
            DIGITS_DATABASE_URL=self.database_url,
            DIGITS_CELERY_BROKER_URL=self.broker_url,
            DIGITS_MODELS_DIR=str(self.models_dir),
            DIGITS_VERSIONS_DIR=str(self.versions_dir),
            DIGITS_ADMIN_API_KEY_FILE=str(key_file),
            **self.extra_env,
        )
        return env

    def _start(self, argv: list[str], env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        out = (self.logs / log).open("wb")
        self._files.append(out)
        # cwd: an empty folder, so no .env file of the checkout leaks into the settings.
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=self.logs,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._procs.append(proc)
        return proc

    def start_api(self) -> str:
        """Start one API process on a free port; returns its base URL (not waited for)."""
        command, _ = compose_service("api")
        port = free_port()
        self._start(local_argv(command, port), self.env("api"), f"api-{len(self.apis)}.log")
        url = f"http://127.0.0.1:{port}"
        self.apis.append(url)
        return url

    def start_worker(self) -> subprocess.Popen[bytes]:
        """Start one Celery worker with the compose command (unique node name)."""
        command, _ = compose_service("worker")
        argv = [*local_argv(command), f"--hostname=digits-it-{uuid.uuid4().hex[:8]}@%h"]
        proc = self._start(argv, self.env("worker"), f"worker-{len(self.workers)}.log")
        self.workers.append(proc)
        return proc

    def wait_ready(self, timeout: float = 90.0, probe: str = "/health/ready") -> None:
        """Wait until every API answers 200 on ``probe``."""
        deadline = time.monotonic() + timeout
        for url in self.apis:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}{probe}", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{url} not ready after {timeout} s; logs in {self.logs}")
                time.sleep(0.3)

    def kill(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to a process (its children keep running unless they die with it)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)

    def stop(self) -> None:
        """Stop every process started here (TERM, then KILL of the whole group)."""
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        for out in self._files:
            out.close()


@contextlib.contextmanager
def running_stack(models_dir: Path, logs: Path, **extra_env: str) -> Iterator[Stack]:
    """A fresh database and Redis number, and a ``Stack`` stopped and cleaned up on exit."""
    with fresh_database() as database_url, fresh_redis_db() as broker_url:
        stack = Stack(database_url, broker_url, models_dir, logs, extra_env)
        try:
            yield stack
        finally:
            stack.stop()
