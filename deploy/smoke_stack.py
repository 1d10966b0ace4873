"""The two images and the compose stack, run for real with podman (deploy/smoke.sh runs it).

Given the images built from the Dockerfile's ``api`` and ``worker`` targets, it checks each
(non-root user, the baked models are exactly the shipped ones, size and largest layers, the
HEALTHCHECK; torch absent from the API image, and pip too; torch in the worker's), times the
API image's cold start alone (``podman run`` to ``/health/ready`` 200, three times), then runs
the stack of ``docker-compose.yml`` with the compose file's own commands and environment:
two ``api`` containers of the API image and one ``worker`` container of the worker image
(the targets compose builds them from are checked), against this machine's
PostgreSQL and Redis (a database and a Redis db number of their own, dropped afterwards),
and nginx with ``deploy/nginx.conf`` in front. Then the checks through nginx and the faults.

What differs from ``docker compose up``, because podman here has no Docker DNS and the
machine's PostgreSQL/Redis listen on 127.0.0.1 only:

- each app container gets its own network namespace (slirp4netns) that reaches the host's
  loopback as 10.0.2.2 (``DIGITS_DATABASE_URL``/``DIGITS_CELERY_BROKER_URL`` point there);
  an API publishes its port 8000 on 127.0.0.1:<free port>;
- nginx (host network) runs deploy/nginx.conf with the replicas written into an
  ``upstream`` block instead of Docker's DNS name ``api`` (resolver line dropped), on a free
  port, plus one header naming the replica that answered (so the checks can tell them
  apart); ``nginx -t`` runs first on deploy/nginx.conf exactly as written;
- the admin key secret is a bind mount at the same path (/run/secrets/admin_api_key).

Prints one line per check and, at the end, the table docs/deployment.md records.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
PG_ADMIN_URL = os.environ.get("SMOKE_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
#: The host's loopback as slirp4netns shows it inside a container (allow_host_loopback).
HOST_FROM_CONTAINER = "10.0.2.2"
NETWORK = "slirp4netns:allow_host_loopback=true"
UPSTREAM_HEADER = "X-Smoke-Upstream"
#: The worker's health check in docker-compose.yml.
PING = "celery -A service.jobs.celery_app inspect ping --destination celery@$HOSTNAME --timeout 5"
SHORT_JOB = {
    "family": "cnn",
    "name": "cnn",
    "promote": False,
    "hyperparameters": {"iterations": 800, "acc_step": 200},
}
#: ``DIGITS_JOB_STALL_S`` of the smoke stack: the killed worker's job fails this long after.
SMOKE_STALL_S = 20
#: The goals of issue 24 for the two images' sizes (bytes).
API_SIZE_GOAL = 350_000_000
WORKER_SIZE_GOAL = 1_200_000_000
#: Exit status 0 when the module is absent, 1 when it is importable.
ABSENT = "import importlib.util, sys; sys.exit(importlib.util.find_spec({!r}) is not None)"
LONG_JOB = {"family": "cnn", "hyperparameters": {"iterations": 10_000, "acc_step": 1000}}


def say(text: str) -> None:
    sys.stdout.write(f"{text}\n")
    sys.stdout.flush()


class SmokeFailure(RuntimeError):
    """A check that did not hold."""


@dataclass
class Report:
    checks: list[tuple[str, str]] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)

    def check(self, ok: bool, what: str, detail: str = "") -> None:
        line = f"{what}: {detail}" if detail else what
        if not ok:
            say(f"FAIL  {line}")
            raise SmokeFailure(line)
        say(f"ok    {line}")
        self.checks.append((what, detail))

    def figure(self, what: str, value: str) -> None:
        say(f"      {what}: {value}")
        self.figures.append((what, value))

    def table(self) -> str:
        rows = ["| figure | value |", "|---|---|"]
        rows += [f"| {what} | {value} |" for what, value in self.figures]
        rows += ["", "| check | result |", "|---|---|"]
        rows += [f"| {what} | passed{': ' + d if d else ''} |" for what, d in self.checks]
        return "\n".join(rows)


def podman(*args: str, check: bool = True, timeout: float = 300) -> str:
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise SmokeFailure(f"podman {' '.join(args[:3])}... failed: {done.stderr.strip()[-800:]}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            result = check()
            if result:
                return result
        if time.monotonic() > deadline:
            raise SmokeFailure(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def sha256_tree(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def human(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit in ("B", "kB") else f"{size:.2f} {unit}"
        size /= 1000
    raise AssertionError


# --- the compose file -------------------------------------------------------------------------


def compose_target(name: str) -> str:
    """The Dockerfile target a compose service is built from."""
    service: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())["services"][name]
    return str(service["build"]["target"])


def compose_service(name: str) -> tuple[list[str], dict[str, str]]:
    """The command and environment of a compose service, ``${VAR:-default}`` at its default."""
    service: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())["services"][name]
    env = {
        key: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))
        for key, value in service["environment"].items()
    }
    return [str(part) for part in service["command"]], env


# --- PostgreSQL and Redis of this machine -----------------------------------------------------


@contextlib.contextmanager
def fresh_database(prefix: str = "digits_smoke") -> Iterator[str]:
    """A new database ``<prefix>_<hex>``; yields its name, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_redis_db() -> Iterator[int]:
    """An empty Redis db number in 1..15 (never 0), claimed with a key, flushed afterwards."""
    numbers = list(range(1, 16))
    random.shuffle(numbers)
    for number in numbers:
        client = redis.Redis(REDIS_HOST, REDIS_PORT, db=number)
        if client.dbsize() == 0 and client.set("digits-smoke-claim", "1", nx=True):
            break
        client.close()
    else:
        raise SmokeFailure("no empty Redis db number in 1..15")
    try:
        yield number
    finally:
        client.flushdb()
        client.close()


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Smoke:
    api_image: str
    worker_image: str
    nginx_image: str
    work: Path
    label: str
    report: Report
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    admin_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    api_ports: dict[str, int] = field(default_factory=dict)
    proxy: str = ""

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    def name(self, what: str) -> str:
        return f"{self.label}-{self.run_id}-{what}"

    def run(self, what: str, *args: str) -> str:
        name = self.name(what)
        podman("run", "-d", "--name", name, "--label", self.label, *args)
        self.containers.append(name)
        return name

    def cleanup(self) -> None:
        for name in reversed(self.containers):
            podman("rm", "-f", "-v", "-t", "0", name, check=False)
        for volume in self.volumes:
            podman("volume", "rm", "-f", volume, check=False)

    def logs(self, name: str, tail: int = 40) -> str:
        done = subprocess.run(
            ["podman", "logs", "--tail", str(tail), name],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout + done.stderr

    # -- 1. the images -----------------------------------------------------------------------

    def check_images(self, api_build_s: int, worker_build_s: int) -> None:
        say("-- the images")
        self.report.figure(
            "build time, `--target api` (podman build, base images present)", f"{api_build_s} s"
        )
        self.report.figure(
            "build time, `--target worker` (after the api build: shared stages cached)",
            f"{worker_build_s} s",
        )
        api_size = self.check_image(self.api_image, "api")
        goal = "met" if api_size < API_SIZE_GOAL else "missed"
        self.report.figure(
            f"goal: API image < {human(API_SIZE_GOAL)}", f"{goal} ({human(api_size)})"
        )
        worker_size = self.check_image(self.worker_image, "worker")
        goal = "met" if worker_size < WORKER_SIZE_GOAL else "missed"
        self.report.figure(
            f"goal: worker image (CPU torch) < {human(WORKER_SIZE_GOAL)}",
            f"{goal} ({human(worker_size)})",
        )

        # What each image holds: no torch (and no pip) in the API's, torch in the worker's.
        for module in ("torch", "pip"):
            done = subprocess.run(
                ["podman", "run", "--rm", "--network", "none", self.api_image,
                 "python", "-c", ABSENT.format(module)],
                capture_output=True, text=True, check=False, timeout=120,
            )  # fmt: skip
            self.report.check(
                done.returncode == 0,
                f"api image: no {module}",
                f"importlib.util.find_spec({module!r}) is None",
            )
        version = podman(
            "run", "--rm", "--network", "none", self.worker_image,
            "python", "-c", "import torch; print(torch.__version__)",
        ).strip()  # fmt: skip
        self.report.check("+cpu" in version, "worker image: torch", f"torch {version}")
        self.cold_start()

    def check_image(self, image: str, what: str) -> int:
        """The checks both images pass; returns the image's size in bytes."""
        info = json.loads(podman("image", "inspect", image))[0]
        size = int(info["Size"])
        self.report.figure(f"{what} image size", human(size))
        history = json.loads(podman("history", "--format", "json", image))
        layers = sorted(history, key=lambda layer: -int(layer.get("size", 0)))[:3]
        for layer in layers:
            created = re.sub(r"\s+", " ", str(layer.get("CreatedBy", layer.get("createdBy", ""))))
            created = created.replace("/bin/sh -c ", "").replace("|", "/")[:90]
            self.report.figure(f"{what} layer", f"{human(int(layer.get('size', 0)))}: `{created}`")

        user = info["Config"].get("User", "")
        uid = podman("run", "--rm", "--network", "none", image, "id", "-u").strip()
        self.report.check(
            user.split(":")[0] == "10001" and uid == "10001",
            f"{what} image: non-root user",
            f"USER {user}, `id -u` in the container = {uid}",
        )

        script = (
            "import hashlib, json, pathlib; root = pathlib.Path('/models'); "
            "print(json.dumps({str(p.relative_to(root)): hashlib.sha256(p.read_bytes())"
            ".hexdigest() for p in sorted(root.rglob('*')) if p.is_file()}))"
        )
        baked = json.loads(
            podman("run", "--rm", "--network", "none", image, "python", "-c", script)
        )
        shipped = sha256_tree(ROOT / "models")
        self.report.check(
            baked == shipped,
            f"{what} image: baked /models == shipped models/ (sha256 of every file)",
            f"{len(shipped)} files",
        )

        config = info["Config"]
        health = info.get("Healthcheck") or config.get("Healthcheck") or {}
        self.report.check(
            bool(health.get("Test")),
            f"{what} image has a HEALTHCHECK",
            " ".join(health["Test"])[:60] + "...",
        )
        return size

    def cold_start(self, runs: int = 3) -> None:
        """The API image alone, its CMD, an admin key: ``podman run`` -> /health/ready 200."""
        took = []
        for index in range(runs):
            port = free_port()
            started = time.monotonic()
            name = self.run(
                f"single-{index}",
                "--network", NETWORK,
                "-p", f"127.0.0.1:{port}:8000",
                "-e", f"DIGITS_ADMIN_API_KEY={self.admin_key}",
                self.api_image,
            )  # fmt: skip
            wait_for(
                lambda port=port: (
                    httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200
                ),
                180,
                f"the API image alone to be ready ({self.logs(name)})",
                every=0.05,
            )
            took.append(time.monotonic() - started)
            if index == 0:
                done = subprocess.run(
                    ["podman", "healthcheck", "run", name],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                self.report.check(
                    done.returncode == 0,
                    "api image: HEALTHCHECK passes (`podman healthcheck run`)",
                    done.stdout.strip() or done.stderr.strip()[-200:],
                )
            podman("rm", "-f", "-v", "-t", "5", name)
            self.containers.remove(name)
        self.report.figure(
            "cold start, API image alone (`podman run` -> /health/ready 200)",
            f"median {sorted(took)[len(took) // 2]:.1f} s of {runs} runs: "
            + ", ".join(f"{t:.1f} s" for t in took),
        )

    # -- 2. the stack --------------------------------------------------------------------------

    def app_args(self, env: dict[str, str], database: str, redis_db: int) -> list[str]:
        key_file = self.work / "admin_api_key"
        if not key_file.exists():
            key_file.write_text(f"{self.admin_key}\n")
            key_file.chmod(0o444)
        env = dict(env)
        env["DIGITS_DATABASE_URL"] = (
            f"postgresql+psycopg://postgres@{HOST_FROM_CONTAINER}:5432/{database}"
        )
        env["DIGITS_CELERY_BROKER_URL"] = f"redis://{HOST_FROM_CONTAINER}:6379/{redis_db}"
        # The one liveness rule: a job with no progress for this long is failed (compose's
        # default is 300 s; the worker-kill check waits for it, so the smoke shortens it).
        env["DIGITS_JOB_STALL_S"] = str(SMOKE_STALL_S)
        args = ["--network", NETWORK, "-v", f"{self.volumes[0]}:/versions"]
        args += ["-v", f"{key_file}:/run/secrets/admin_api_key:ro"]
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        return args

    def start_stack(self, database: str, redis_db: int) -> None:
        say("-- the stack")
        api_cmd, api_env = compose_service("api")
        worker_cmd, worker_env = compose_service("worker")
        self.report.check(
            api_env["DIGITS_DATABASE_URL"].startswith("postgresql+psycopg://")
            and api_env["DIGITS_ADMIN_API_KEY_FILE"] == "/run/secrets/admin_api_key",
            "compose environment read",
            f"api: `{' '.join(api_cmd)}`; worker: `{' '.join(worker_cmd)}`",
        )
        targets = {name: compose_target(name) for name in ("api", "worker")}
        self.report.check(
            targets == {"api": "api", "worker": "worker"},
            "compose builds api from target `api`, worker from target `worker`",
            f"api containers: {self.api_image}; worker: {self.worker_image}",
        )
        volume = self.name("versions")
        podman("volume", "create", "--label", self.label, volume)
        self.volumes.append(volume)

        starts: dict[str, float] = {}
        for api in ("api-1", "api-2"):
            port = free_port()
            self.api_ports[api] = port
            args = self.app_args(api_env, database, redis_db)
            self.run(api, *args, "-p", f"127.0.0.1:{port}:8000", self.api_image, *api_cmd)
            starts[api] = time.monotonic()
        args = self.app_args(worker_env, database, redis_db)
        # Docker puts HOSTNAME in the container's environment, where its health check's
        # `celery@$$HOSTNAME` reads it; podman 4.3's exec does not: set it explicitly.
        node = self.name("worker")
        args += ["--hostname", node, "-e", f"HOSTNAME={node}"]
        self.run("worker", *args, self.worker_image, *worker_cmd)
        starts["worker"] = time.monotonic()

        for api, port in self.api_ports.items():
            wait_for(
                lambda port=port: (
                    httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200
                ),
                240,
                f"{api} to be ready (logs: {self.logs(self.name(api))})",
            )
            self.report.figure(
                f"cold start {api} (run -> /health/ready 200)",
                f"{time.monotonic() - starts[api]:.1f} s",
            )
        worker = self.name("worker")
        wait_for(
            lambda: " ready." in self.logs(worker, 200), 240, f"the worker ({self.logs(worker)})"
        )
        self.report.figure(
            "cold start worker (run -> celery 'ready.')",
            f"{time.monotonic() - starts['worker']:.1f} s",
        )

        for api in self.api_ports:
            done = subprocess.run(
                ["podman", "healthcheck", "run", self.name(api)],
                capture_output=True,
                text=True,
                check=False,
            )
            self.report.check(done.returncode == 0, f"{api} HEALTHCHECK passes", "")
        ping = subprocess.run(
            ["podman", "exec", worker, "sh", "-c", PING],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        self.report.check(
            ping.returncode == 0 and "pong" in ping.stdout,
            "worker: the compose health check (celery inspect ping) answers",
            "pong" if "pong" in ping.stdout else (ping.stdout + ping.stderr)[-300:],
        )
        done = subprocess.run(
            ["podman", "healthcheck", "run", worker],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        self.report.check(
            done.returncode == 0,
            "worker image: HEALTHCHECK passes (`podman healthcheck run`)",
            done.stdout.strip() or done.stderr.strip()[-200:],
        )
        # The versions volume is writable by the image's user (10001) in every container.
        probe = "import os; p='/versions/.smoke-probe'; open(p, 'w').close(); os.remove(p)"
        podman("exec", worker, "python", "-c", probe)
        self.report.check(True, "/versions volume writable by uid 10001", "")

        self.start_proxy()

    def start_proxy(self) -> None:
        self.report.check(
            True,
            "nginx -t on deploy/nginx.conf as written",
            podman(
                "run", "--rm", "--network", "none",
                "-v", f"{NGINX_CONF}:/etc/nginx/conf.d/default.conf:ro",
                self.nginx_image, "sh", "-c", "nginx -t 2>&1",
            ).strip().splitlines()[-1],
        )  # fmt: skip
        port = free_port()
        conf = NGINX_CONF.read_text()
        replacements = [
            (r"(?m)^resolver .*\n", ""),
            (r"listen 8080;", f"listen 127.0.0.1:{port};"),
            (r"http://api:8000", "http://digits_api"),
            (
                r"(?m)^server \{\n",
                f"server {{\n    add_header {UPSTREAM_HEADER} $upstream_addr always;\n",
            ),
        ]
        for pattern, new in replacements:
            conf, count = re.subn(pattern, new, conf)
            if count == 0:
                raise SmokeFailure(
                    f"deploy/nginx.conf no longer has {pattern!r}: update smoke_stack.py"
                )
        servers = "".join(f"    server 127.0.0.1:{p};\n" for p in self.api_ports.values())
        conf = f"upstream digits_api {{\n{servers}}}\n" + conf
        path = self.work / "nginx-smoke.conf"
        path.write_text(conf)
        path.chmod(0o444)
        started = time.monotonic()
        self.run(
            "proxy",
            "--network",
            "host",
            "-v",
            f"{path}:/etc/nginx/conf.d/default.conf:ro",
            self.nginx_image,
        )
        self.proxy = f"http://127.0.0.1:{port}"
        wait_for(
            lambda: httpx.get(f"{self.proxy}/nginx-health", timeout=2).status_code == 200,
            60,
            "nginx",
        )
        self.report.figure(
            "cold start nginx (run -> /nginx-health 200)", f"{time.monotonic() - started:.1f} s"
        )

    # -- 3. through nginx ---------------------------------------------------------------------

    def upstream_of(self, response: httpx.Response) -> str:
        address = response.headers.get(UPSTREAM_HEADER, "")
        for api, port in self.api_ports.items():
            if address.endswith(f":{port}"):
                return api
        return address or "?"

    def check_predictions(self) -> None:
        say("-- through nginx: health and the lecture's 360 test rows")
        from training.contract import read_manifest
        from training.data import load_split

        ready = httpx.get(f"{self.proxy}/health/ready", timeout=5)
        self.report.check(
            ready.status_code == 200, "/health/ready through nginx", str(ready.status_code)
        )
        split = load_split()
        rows, labels = split.x_test.tolist(), split.y_test.tolist()
        for family in ("logistic", "fnn", "cnn"):
            expected = read_manifest(ROOT / "models" / family / "1").metrics.test_accuracy
            seen: dict[str, float] = {}
            for _ in range(4):
                response = httpx.post(
                    f"{self.proxy}/models/{family}/predict",
                    params={"version": 1},
                    json={"instances": rows},
                    timeout=60,
                )
                if response.status_code != 200:
                    raise SmokeFailure(f"{family}: {response.status_code} {response.text[:300]}")
                got = [p["label"] for p in response.json()["predictions"]]
                correct = sum(int(a == b) for a, b in zip(got, labels, strict=True))
                seen[self.upstream_of(response)] = correct / len(labels)
            self.report.check(
                set(seen) == set(self.api_ports)
                and all(abs(acc - expected) < 1e-9 for acc in seen.values()),
                f"{family} v1: 360 test rows from each API through nginx",
                f"accuracy {expected:.4f} (the manifest's) from " + ", ".join(sorted(seen)),
            )

    def check_job_and_sse(self) -> None:
        say("-- a /train job: API 1 -> worker container -> API 2, its SSE stream through nginx")
        api1 = f"http://127.0.0.1:{self.api_ports['api-1']}"
        api2 = f"http://127.0.0.1:{self.api_ports['api-2']}"
        submitted = httpx.post(f"{api1}/train", json=SHORT_JOB, headers=self.admin, timeout=10)
        if submitted.status_code != 202:
            raise SmokeFailure(f"POST /train: {submitted.status_code} {submitted.text[:300]}")
        job_id = submitted.json()["id"]
        events: list[tuple[float, str, dict[str, Any]]] = []
        started = time.monotonic()
        with httpx.stream("GET", f"{self.proxy}/train/{job_id}/events", timeout=120) as stream:
            content_type = stream.headers.get("content-type", "")
            kind = ""
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    events.append((time.monotonic() - started, kind, json.loads(line[5:])))
                    if kind == "final":
                        break
        progress = [at for at, kind, _ in events if kind == "progress"]
        final_at, final_kind, final = events[-1]
        self.report.check(
            final_kind == "final" and final["status"] == "succeeded",
            "job succeeded on the worker container",
            f"{final['model']}",
        )
        # Unbuffered: progress events arrive spread over the fit, not in one lump at the end.
        self.report.check(
            "text/event-stream" in content_type
            and len(progress) >= 3
            and final_at - progress[0] >= 1.0
            and len({round(at, 1) for at in progress}) >= 3,
            "SSE through nginx arrives live (unbuffered)",
            f"{len(progress)} progress events from {progress[0]:.1f} s to {progress[-1]:.1f} s, "
            f"final at {final_at:.1f} s",
        )
        seen = httpx.get(f"{api2}/train/{job_id}", timeout=10).json()
        self.report.check(seen["status"] == "succeeded", "the job is visible from API 2", "")
        version = str(final["model"]["version"])

        def served(base: str) -> bool:
            response = httpx.post(
                f"{base}/models/cnn/predict",
                params={"version": version},
                json={"pixels": [0] * 64},
                timeout=10,
            )
            return response.status_code == 200 and response.json()["version"] == version

        waited = time.monotonic()
        wait_for(lambda: served(api2), 60, f"API 2 to serve cnn v{version}")
        self.report.check(
            True,
            f"cnn v{version} (made by the worker) served by API 2",
            f"after {time.monotonic() - waited:.1f} s",
        )
        wait_for(lambda: served(api1) and served(self.proxy), 60, "API 1 and nginx to serve it")
        self.report.check(True, f"cnn v{version} served by API 1 and through nginx", "")

    # -- 4. faults -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def probing(self) -> Iterator[list[tuple[float, int]]]:
        """Predict through nginx every 0.1 s in a thread; yields (time, status) as they come."""
        results: list[tuple[float, int]] = []
        stop = threading.Event()

        def loop() -> None:
            with httpx.Client(timeout=10) as client:
                while not stop.is_set():
                    try:
                        status = client.post(
                            f"{self.proxy}/predict", json={"pixels": [0] * 64}
                        ).status_code
                    except httpx.HTTPError:
                        status = 0
                    results.append((time.monotonic(), status))
                    time.sleep(0.1)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield results
        finally:
            stop.set()
            thread.join(15)

    def check_worker_kill(self) -> None:
        say("-- SIGKILL of the worker container mid-job")
        submitted = httpx.post(f"{self.proxy}/train", json=LONG_JOB, headers=self.admin, timeout=10)
        if submitted.status_code != 202:
            raise SmokeFailure(f"POST /train: {submitted.status_code} {submitted.text[:300]}")
        job_id = submitted.json()["id"]

        def job() -> dict[str, Any]:
            return dict(httpx.get(f"{self.proxy}/train/{job_id}", timeout=10).json())

        wait_for(lambda: job()["progress"]["iteration"] > 0, 120, "the long job to make progress")
        with self.probing() as probes:
            killed = time.monotonic()
            podman("kill", "--signal", "KILL", self.name("worker"))
            at_kill = job()
            done = wait_for(
                lambda: (j := job())["status"] in ("failed", "succeeded", "cancelled") and j,
                SMOKE_STALL_S + 40,
                "the job to end",
            )
            failed_after = time.monotonic() - killed
            time.sleep(2)
        bad = [status for _, status in probes if status != 200]
        self.report.check(
            done["status"] == "failed" and str(done["error"]).startswith("no progress for "),
            "worker SIGKILLed mid-job: the job ends failed",
            f"at iteration {at_kill['progress']['iteration']}; `failed` after "
            f"{failed_after:.1f} s: {str(done['error'])[:40]}...",
        )
        self.report.check(
            not bad and len(probes) > 10,
            "APIs keep serving while the worker dies",
            f"{len(probes)}/{len(probes)} predicts through nginx answered 200",
        )

    def check_api_stop(self, window: float = 10.0) -> None:
        say("-- stop API 1: nginx routes around it")
        with self.probing() as probes:
            time.sleep(1)
            stopping = time.monotonic()
            podman("stop", "-t", "10", self.name("api-1"))
            stopped = time.monotonic()
            time.sleep(window + 15)
        during = [(at, s) for at, s in probes if stopping <= at < stopped + window]
        after = [(at, s) for at, s in probes if at >= stopped + window]
        bad_during = [s for _, s in during if s >= 500 or s == 0]
        bad_after = [s for _, s in after if s != 200]
        self.report.figure(
            "`podman stop` of API 1 (SIGTERM -> exited)", f"{stopped - stopping:.1f} s"
        )
        # nginx resends an inference POST that reached the stopping replica (deploy/nginx.conf):
        # no predict fails, during the stop or after it.
        self.report.check(
            not bad_during and not bad_after and len(after) > 20,
            f"API 1 stopped: no predict failed, during the stop or after ({window:.0f} s)",
            f"{len(after)}/{len(after)} predicts 200 after it; during it "
            f"{len(during) - len(bad_during)}/{len(during)} 200"
            + (f" (others: {sorted(bad_during)}, 0 = no answer)" if bad_during else ""),
        )
        answered = {
            self.upstream_of(httpx.get(f"{self.proxy}/health/ready", timeout=5)) for _ in range(6)
        }
        self.report.check(
            answered == {"api-2"}, "nginx sends everything to API 2", ", ".join(sorted(answered))
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-image", required=True)
    parser.add_argument("--worker-image", required=True)
    parser.add_argument("--nginx-image", required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--label", default="digits-smoke")
    parser.add_argument("--api-build-seconds", type=int, default=0)
    parser.add_argument("--worker-build-seconds", type=int, default=0)
    args = parser.parse_args()
    report = Report()
    smoke = Smoke(
        args.api_image, args.worker_image, args.nginx_image, args.work, args.label, report
    )
    started = time.monotonic()
    try:
        smoke.check_images(args.api_build_seconds, args.worker_build_seconds)
        with fresh_database() as database, fresh_redis_db() as redis_db:
            say(f"      database {database}, Redis db {redis_db}")
            try:
                smoke.start_stack(database, redis_db)
                smoke.check_predictions()
                smoke.check_job_and_sse()
                smoke.check_worker_kill()
                smoke.check_api_stop()
            except BaseException:
                for name in smoke.containers:
                    say(f"---- podman logs {name} (last lines)\n{smoke.logs(name, 25)}")
                raise
            finally:
                smoke.cleanup()
    except SmokeFailure as exc:
        say(f"\nsmoke_stack: FAILED: {exc}")
        return 1
    finally:
        smoke.cleanup()
    report.figure("stack run (image checks .. faults)", f"{time.monotonic() - started:.0f} s")
    say("\n" + report.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
