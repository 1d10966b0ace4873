"""What ``bench/serve_bench.py`` and ``bench/cold_start.py`` share: how a server of the bench
is started (command, environment, readiness probe), its CPU time and the RSS of its process
tree, ``wrk`` runs and their parsing, and the request bodies (not a benchmark by itself)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SERVER_CORE, CLIENT_CORE = "0", "1"
#: The servers that are this project's service: the one measured (its default runtime, ONNX
#: Runtime where a version has model.onnx), the same service on TorchScript (--torchscript),
#: and another checkout's (--baseline).
SERVICES = ("service", "torchscript", "baseline")
#: The shipped families, each served at /models/<name>/predict and /v2/models/<name>/infer.
FAMILIES = ("logistic", "fnn", "cnn", "ensemble")
# Test row 0 of the lecture's split (a 7).
SEVEN = [0, 0, 2, 15, 16, 16, 13, 0, 0, 0, 8, 12, 8, 12, 16, 0, 0, 0, 0, 0, 0, 15, 10, 0,
         0, 0, 0, 0, 6, 16, 3, 0, 0, 0, 0, 3, 16, 16, 14, 0, 0, 0, 0, 0, 12, 10, 1, 0,
         0, 0, 0, 2, 15, 2, 0, 0, 0, 0, 0, 13, 8, 0, 0, 0]  # fmt: skip


class ServerExited(SystemExit):
    """A server exited before it was ready (a ``SystemExit``: the bench stops, unless the
    server was an optional reference)."""


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float = float("nan")  # server CPU time per request (robust to background load)
    forward_us: float = float("nan")  # the service's CNN forward time per request (/metrics)

    def __str__(self) -> str:
        return (
            f"{self.rps:,.0f} req/s, p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms, "
            f"{self.errors} errors"
        )


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    cold_start_s: float
    port: int = 0

    def cpu_s(self) -> float:
        """User + system CPU seconds the server process has used so far."""
        return _cpu_s(self.process.pid)

    def children_cpu_s(self) -> float:
        """CPU seconds used so far by the server's live child processes (the service's job
        workers)."""
        total = 0.0
        for pid in descendants(self.process.pid):
            with contextlib.suppress(OSError):  # a child that just exited
                total += _cpu_s(pid)
        return total

    def settle(self, quiet_s: float = 1.0, limit_s: float = 90.0) -> float:
        """Wait until the server's children stop using CPU (a baseline from before 2026-12-05
        warms idle job workers a few seconds after it is ready: importing torch takes them
        seconds of CPU on the server's core, which would weigh on the first rounds; today's
        service starts none before its first job); the seconds waited."""
        began = time.perf_counter()
        last = self.children_cpu_s()
        while time.perf_counter() - began < limit_s:
            time.sleep(quiet_s)
            now = self.children_cpu_s()
            # An older baseline's workers started 2 s (WARM_AFTER_S) after the start.
            if now - last < 0.05 * quiet_s and time.perf_counter() - began > 5:
                break
            last = now
        return time.perf_counter() - began

    def rss_mb(self) -> float:
        """Resident memory of the server's process tree (the process and its descendants,
        summed: pages they share count once per process, so this is an upper bound)."""
        return tree_rss_mb(self.process.pid)


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """The live descendants of ``pid`` (children, their children, ...)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                children = [int(p) for p in task.read_text().split()]
                found += children
                todo += children
    return found


def tree_rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` and its descendants, summed, in MB (nan when ``pid`` is gone)."""
    total, seen = 0, False
    for each in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):
            match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{each}/status").read_text())
            if match:
                total, seen = total + int(match.group(1)), True
    return total / 1024 if seen else float("nan")


@dataclass
class Launch:
    """How to start one server: the command (not yet pinned), its environment and folder,
    and the URL that answers 200 once it is ready."""

    cmd: list[str]
    env: dict[str, str]
    cwd: Path
    probe: str


def launch(
    name: str, port: int, models_dir: Path, scratch: Path, baseline: Path | None = None
) -> Launch:
    """The service (``name`` in ``SERVICES``; ``torchscript`` on ``DIGITS_RUNTIME=torchscript``)
    or a reference app of ``bench/ref_<name>.py``, as the benchmarks start them: torch and
    ONNX Runtime threads 1, the service on a fresh SQLite job store and versions folder in
    ``scratch``."""
    env = {**os.environ, "DIGITS_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1"}
    cwd = ROOT
    if name in SERVICES:
        env |= {"DIGITS_MODELS_DIR": str(models_dir), "DIGITS_LOG_LEVEL": "warning"}
        if name == "torchscript":
            env["DIGITS_RUNTIME"] = "torchscript"
        env |= {"DIGITS_DATABASE_URL": f"sqlite:///{scratch}/jobs.db"}
        env |= {"DIGITS_VERSIONS_DIR": str(scratch / "versions")}
        if name == "baseline" and baseline is not None:
            cwd, env["PYTHONPATH"] = baseline, str(baseline)
        cmd = [PY, "-m", "service", "--port", str(port), "--device", "cpu"]
        return Launch(cmd, env, cwd, f"http://127.0.0.1:{port}/health/ready")
    cmd = [PY, str(ROOT / "bench" / f"ref_{name}.py"), "--port", str(port)]
    if name == "naive":
        cmd += ["--model", str(models_dir / "cnn" / "1" / "model.pt")]
    return Launch(cmd, env, cwd, f"http://127.0.0.1:{port}/")


def wait_ready(
    name: str, process: subprocess.Popen[bytes], probe: str, began: float, poll_s: float = 0.02
) -> float:
    """Seconds from ``began`` until ``probe`` answers 200 (``ServerExited`` if the server
    dies first)."""
    while True:
        if process.poll() is not None:
            raise ServerExited(f"{name} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(probe, timeout=5) as response:
                if response.status == 200:
                    return time.perf_counter() - began
        except (urllib.error.URLError, ConnectionError):
            time.sleep(poll_s)


def stop(servers: Iterable[Server]) -> None:
    """Stop the servers (after Ctrl-C they may be stopping already: it reached them too)."""
    servers = list(servers)
    for server in servers:
        if server.process.poll() is None:
            server.process.terminate()
    for server in servers:
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def post_json(url: str, body: dict[str, object]) -> int:
    """POST ``body`` as JSON; the status."""
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def lua_script(folder: Path, body: dict[str, object], count_statuses: bool = False) -> Path:
    """A wrk script POSTing ``body`` as JSON; with ``count_statuses`` it prints
    ``status <code> <count>`` lines at the end (one wrk thread)."""
    path = folder / f"body-{len(os.listdir(folder))}.lua"
    text = json.dumps(body, separators=(",", ":"))
    script = (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [==[{text}]==]\n"
    )
    if count_statuses:
        script += (
            "local the_thread\n"
            "function setup(thread) the_thread = thread end\n"
            "counts = {}\n"
            "function response(status, headers, body)\n"
            "  counts[status] = (counts[status] or 0) + 1\n"
            "end\n"
            "function done(summary, latency, requests)\n"
            '  for status, n in pairs(the_thread:get("counts")) do\n'
            '    io.write(string.format("status %d %d\\n", status, n))\n'
            "  end\n"
            "end\n"
        )
    path.write_text(script)
    return path


def lua_body(folder: Path, data: bytes, headers: dict[str, str]) -> Path:
    """A wrk script POSTing the bytes ``data`` (read from a file: binary data is not a Lua
    literal) with ``headers``."""
    stem = folder / f"body-{len(os.listdir(folder))}"
    stem.with_suffix(".bin").write_bytes(data)
    lines = ['wrk.method = "POST"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    lines += [f'local f = io.open("{stem.with_suffix(".bin")}", "rb")', "wrk.body = f:read('*a')"]
    stem.with_suffix(".lua").write_text("\n".join([*lines, "f:close()", ""]))
    return stem.with_suffix(".lua")


def v2_json(rows: list[list[int]]) -> dict[str, object]:
    """An Open Inference Protocol request of ``rows`` as JSON data (every output as JSON)."""
    tensor = {"name": "pixels", "shape": [len(rows), 64], "datatype": "FP32"}
    return {"inputs": [{**tensor, "data": [v for row in rows for v in row]}]}


def v2_binary(folder: Path, rows: list[list[int]]) -> Path:
    """A wrk script POSTing ``rows`` as a binary FP32 tensor and asking for both outputs as
    binary data: what ``tritonclient.http`` sends by default."""
    data = np.asarray(rows, dtype="<f4").tobytes()
    tensor = {"name": "pixels", "shape": [len(rows), 64], "datatype": "FP32"}
    header = {
        "inputs": [{**tensor, "parameters": {"binary_data_size": len(data)}}],
        "outputs": [
            {"name": name, "parameters": {"binary_data": True}}
            for name in ("probabilities", "label")
        ],
    }
    head = json.dumps(header, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(head)),
    }
    return lua_body(folder, head + data, headers)


def progress(message: str) -> None:
    """One line of progress, shown at once even when stdout is a pipe."""
    print(message, flush=True)


def wrk(url: str, script: Path, connections: int, seconds: float) -> Result:
    """Run wrk on the client core and parse requests/s and the latency percentiles."""
    cmd = ["taskset", "-c", CLIENT_CORE, "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s"]
    cmd += ["--latency", "-s", str(script), url]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode in (-signal.SIGINT, 128 + signal.SIGINT):  # Ctrl-C reached wrk first
        raise KeyboardInterrupt
    if done.returncode != 0:
        raise SystemExit(f"wrk failed with status {done.returncode}: {done.stderr.strip()}")
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return Result(rps, percentile(out, "50%"), percentile(out, "99%"), errors)


def percentile(out: str, label: str) -> float:
    """A latency percentile of wrk's ``--latency`` output, in ms."""
    match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if match is None:
        return float("nan")
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]
    return float(match.group(1)) * scale


def median(results: list[Result]) -> Result:
    return Result(
        statistics.median(r.rps for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.errors for r in results),
        statistics.median(r.cpu_us for r in results),
        statistics.median(r.forward_us for r in results),
    )


def measure(server: Server, url: str, script: Path, connections: int, seconds: float) -> Result:
    """``wrk`` plus the server's CPU time per request over the run (and, for the service,
    the time its CNN forwards took per request: the part no HTTP stack can save)."""
    before, forward_before = server.cpu_s(), cnn_forward_s(server)
    result = wrk(url, script, connections, seconds)
    requests = result.rps * seconds
    result.cpu_us = (server.cpu_s() - before) / requests * 1e6
    result.forward_us = (cnn_forward_s(server) - forward_before) / requests * 1e6
    return result


def cnn_metric(port: int, name: str) -> float:
    """One CNN v1 series of the service's /metrics (nan when absent)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
        text = response.read().decode()
    match = re.search(rf'{name}\{{model="cnn",version="1"\}} (\S+)', text)
    return float(match.group(1)) if match else float("nan")


def cnn_forward_s(server: Server) -> float:
    """Seconds the service's CNN forwards have taken so far (nan for the other servers)."""
    if server.name not in SERVICES:
        return float("nan")
    return cnn_metric(server.port, "digits_forward_seconds_sum")


def mean_batch(port: int) -> float:
    """Mean rows per forward of the service's CNN, from its /metrics."""
    total = cnn_metric(port, "digits_batch_size_rows_sum")
    return total / cnn_metric(port, "digits_batch_size_rows_count")
