"""Serving benchmark: the service against a naive and a ceiling FastAPI server and the bare
ASGI floor (not a test).

    .venv/bin/python bench/serve_bench.py [--models-dir models] [--seconds 5] [--rounds 2]
        [--baseline DIR]   # also the service of another checkout (e.g. a git worktree of main)
        [--torchscript]    # also this service on DIGITS_RUNTIME=torchscript, side by side
        [--overload 30]    # then c=512 on the service alone for 30 s: status codes, p99, RSS

References: ``floor`` (a bare ASGI app on uvicorn answering a constant: the Python floor),
``ceiling`` (FastAPI ``async def`` + pydantic, constant answer) and ``naive`` (FastAPI + one
forward per request).

The service is also measured on the Open Inference Protocol (``/v2``, issue 12), right after
its ``/predict`` in every step: one JSON row at each concurrency, and 256-row batches as binary
tensors (Triton's binary tensor data extension, as ``tritonclient`` sends them) against the
256-row JSON ``/predict``; the ratios of the same run are in the last two tables.

Every server is one process pinned to core 0 (``taskset -c 0``), torch threads 1, uvicorn with
uvloop + httptools; ``wrk`` (``apt-get install -y wrk``) is pinned to core 1. Rounds are
interleaved (service, naive, ceiling, then the next scenario) so background load hits all
three alike; each figure is the median over rounds. See docs/service.md.

It prints a line per step as it goes (about a minute per round with the defaults); Ctrl-C
stops the servers and exits with status 130.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SERVER_CORE, CLIENT_CORE = "0", "1"
PORTS = {"service": 8100, "naive": 8101, "ceiling": 8102, "floor": 8104}
#: The servers that are this project's service: the one measured (its default runtime, ONNX
#: Runtime where a version has model.onnx), the same service on TorchScript (--torchscript),
#: and another checkout's (--baseline).
SERVICES = ("service", "torchscript", "baseline")
# Test row 0 of the lecture's split (a 7).
SEVEN = [0, 0, 2, 15, 16, 16, 13, 0, 0, 0, 8, 12, 8, 12, 16, 0, 0, 0, 0, 0, 0, 15, 10, 0,
         0, 0, 0, 0, 6, 16, 3, 0, 0, 0, 0, 3, 16, 16, 14, 0, 0, 0, 0, 0, 12, 10, 1, 0,
         0, 0, 0, 2, 15, 2, 0, 0, 0, 0, 0, 13, 8, 0, 0, 0]  # fmt: skip


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

    def cpu_s(self) -> float:
        """User + system CPU seconds the server process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def children_cpu_s(self) -> float:
        """CPU seconds used so far by the server's live child processes (the service's job
        workers)."""
        total = 0.0
        for child in Path(f"/proc/{self.process.pid}/task").glob("*/children"):
            for pid in child.read_text().split():
                with contextlib.suppress(OSError):  # a child that just exited
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
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
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        return int(match.group(1)) / 1024 if match else float("nan")


def start(name: str, models_dir: Path, baseline: Path | None = None) -> Server:
    """Start one server pinned to the server core; wait until it answers (ready for the service)."""
    port = PORTS[name]
    env = {**os.environ, "DIGITS_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1"}
    cwd = ROOT
    if name in SERVICES:
        env |= {"DIGITS_MODELS_DIR": str(models_dir), "DIGITS_LOG_LEVEL": "warning"}
        if name == "torchscript":
            env["DIGITS_RUNTIME"] = "torchscript"
        env |= {"DIGITS_DATABASE_URL": f"sqlite:///{tempfile.mkdtemp()}/jobs.db"}
        env |= {"DIGITS_VERSIONS_DIR": tempfile.mkdtemp()}
        if name == "baseline" and baseline is not None:
            cwd, env["PYTHONPATH"] = baseline, str(baseline)
        cmd = [PY, "-m", "service", "--port", str(port), "--device", "cpu"]
        probe = f"http://127.0.0.1:{port}/health/ready"
    else:
        cmd = [PY, str(ROOT / "bench" / f"ref_{name}.py"), "--port", str(port)]
        if name == "naive":
            cmd += ["--model", str(models_dir / "cnn" / "1" / "model.pt")]
        probe = f"http://127.0.0.1:{port}/"
    progress(f"starting {name} on port {port}")
    began = time.perf_counter()
    process = subprocess.Popen(["taskset", "-c", SERVER_CORE, *cmd], cwd=cwd, env=env)
    return Server(name, process, wait_ready(name, process, probe, began))


def wait_ready(
    name: str, process: subprocess.Popen[bytes], probe: str, began: float, poll_s: float = 0.02
) -> float:
    """Seconds from ``began`` until ``probe`` answers 200 (exit if the server dies first)."""
    while True:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(probe, timeout=5) as response:
                if response.status == 200:
                    return time.perf_counter() - began
        except (urllib.error.URLError, ConnectionError):
            time.sleep(poll_s)


def stop(servers: Iterable[Server]) -> None:
    """Stop the servers (after Ctrl-C they may be stopping already: it reached them too)."""
    for server in servers:
        if server.process.poll() is None:
            server.process.terminate()
    for server in servers:
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


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
    """An Open Inference Protocol request of ``rows`` as JSON data (both outputs as JSON)."""
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
    return Result(rps, _percentile(out, "50%"), _percentile(out, "99%"), errors)


def _percentile(out: str, label: str) -> float:
    match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if match is None:
        return float("nan")
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]
    return float(match.group(1)) * scale


def forward_rows_per_s(
    models_dir: Path, name: str, batch: int = 256, seconds: float = 1.0
) -> float:
    """In-process rows/s of ``name``'s TorchScript forward (+ softmax) at ``batch``, one core."""
    module = torch.jit.load(str(models_dir / name / "1" / "model.pt")).eval()
    x = torch.rand(batch, 64) * 16
    with torch.inference_mode():
        for _ in range(20):
            torch.softmax(module(x), dim=1)
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            torch.softmax(module(x), dim=1)
            count += 1
    return count * batch / (time.perf_counter() - start)


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
    before, forward_before = server.cpu_s(), _cnn_forward_s(server)
    result = wrk(url, script, connections, seconds)
    requests = result.rps * seconds
    result.cpu_us = (server.cpu_s() - before) / requests * 1e6
    result.forward_us = (_cnn_forward_s(server) - forward_before) / requests * 1e6
    return result


def _cnn_metric(port: int, name: str) -> float:
    """One CNN v1 series of the service's /metrics (nan when absent)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
        text = response.read().decode()
    match = re.search(rf'{name}\{{model="cnn",version="1"\}} (\S+)', text)
    return float(match.group(1)) if match else float("nan")


def _cnn_forward_s(server: Server) -> float:
    """Seconds the service's CNN forwards have taken so far (nan for the other servers)."""
    if server.name not in SERVICES:
        return float("nan")
    return _cnn_metric(PORTS[server.name], "digits_forward_seconds_sum")


def mean_batch(port: int) -> float:
    """Mean rows per forward of the service's CNN, from its /metrics."""
    total = _cnn_metric(port, "digits_batch_size_rows_sum")
    return total / _cnn_metric(port, "digits_batch_size_rows_count")


def main() -> int:
    try:
        return run()
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped, no figures", file=sys.stderr)
        return 130


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one wrk round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--batch-connections", type=int, default=4)
    parser.add_argument(
        "--overload", type=float, default=0, help="seconds of c=512 on the service (0: skip)"
    )
    parser.add_argument(
        "--baseline", type=Path, help="a checkout whose service is measured too, as 'baseline'"
    )
    parser.add_argument(
        "--torchscript",
        action="store_true",
        help="also the service with DIGITS_RUNTIME=torchscript, as 'torchscript' (the two "
        "runtimes side by side in the same run)",
    )
    parser.add_argument(
        "--v2-only",
        action="store_true",
        help="only the service: /predict against /v2 (more rounds in the same time)",
    )
    args = parser.parse_args()
    if args.baseline is not None:
        PORTS["baseline"] = 8103
    if args.torchscript:
        PORTS["torchscript"] = 8105
    if args.v2_only:
        for name in ("naive", "ceiling", "floor", "baseline"):
            PORTS.pop(name, None)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get update && apt-get install -y wrk")
    models = [m for m in ("logistic", "fnn", "cnn") if (args.models_dir / m / "1").is_dir()]
    os.sched_setaffinity(0, {int(SERVER_CORE)})
    torch.set_num_threads(1)
    forward = {}
    for m in models:
        forward[m] = forward_rows_per_s(args.models_dir, m)
        progress(f"in-process forward, {m}, batch 256: {forward[m]:,.0f} rows/s")
    os.sched_setaffinity(0, {int(SERVER_CORE), int(CLIENT_CORE)})

    servers: dict[str, Server] = {}
    single: dict[tuple[str, int], list[Result]] = {}
    batch: dict[str, list[Result]] = {}
    v2_single: dict[int, list[Result]] = {}
    v2_batch: dict[str, list[Result]] = {}
    try:
        for name in PORTS:
            servers[name] = start(name, args.models_dir, args.baseline)
            progress(f"{name} ready in {servers[name].cold_start_s:.2f} s")
        for name, server in servers.items():
            if name in SERVICES:
                progress(f"{name}: its job workers warmed, idle after {server.settle():.1f} s")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            one = lua_script(folder, {"instances": [SEVEN]})
            rows = lua_script(folder, {"instances": [SEVEN] * 256})
            v2_one = lua_script(folder, v2_json([SEVEN]))
            v2_rows = v2_binary(folder, [SEVEN] * 256)
            service = f"http://127.0.0.1:{PORTS['service']}"
            for name in PORTS:  # warm-up
                wrk(f"http://127.0.0.1:{PORTS[name]}/predict", one, 8, 1)
            wrk(f"{service}/v2/models/cnn/infer", v2_one, 8, 1)
            for round_ in range(1, args.rounds + 1):
                for c in args.concurrency:
                    for name in PORTS:
                        url = f"http://127.0.0.1:{PORTS[name]}/predict"
                        result = measure(servers[name], url, one, c, args.seconds)
                        single.setdefault((name, c), []).append(result)
                        progress(f"round {round_}/{args.rounds}, c={c}, {name}: {result}")
                    url = f"{service}/v2/models/cnn/infer"
                    result = measure(servers["service"], url, v2_one, c, args.seconds)
                    v2_single.setdefault(c, []).append(result)
                    progress(f"round {round_}/{args.rounds}, c={c}, service /v2 JSON: {result}")
                for m in models:
                    url = f"http://127.0.0.1:{PORTS['service']}/models/{m}/predict"
                    result = measure(
                        servers["service"], url, rows, args.batch_connections, args.seconds
                    )
                    batch.setdefault(m, []).append(result)
                    progress(f"round {round_}/{args.rounds}, batch 256, {m}: {result}")
                    url = f"{service}/v2/models/{m}/infer"
                    result = measure(
                        servers["service"], url, v2_rows, args.batch_connections, args.seconds
                    )
                    v2_batch.setdefault(m, []).append(result)
                    progress(f"round {round_}/{args.rounds}, batch 256, {m}, /v2 binary: {result}")
            rss = {name: s.rss_mb() for name, s in servers.items()}
            print(
                "service: mean CNN rows per forward over the run: "
                f"{mean_batch(PORTS['service']):.1f}"
            )
            if args.overload > 0:
                overload(servers["service"], folder, args.overload)
    finally:
        stop(servers.values())
    if not args.v2_only:
        report(servers, single, batch, forward, rss, args)
    report_v2(single, batch, v2_single, v2_batch, args)
    return 0


def overload(server: Server, folder: Path, seconds: float, connections: int = 512) -> None:
    """Far more clients than the service can serve: it must shed load (429 at the queue
    bound, 504 past a deadline), never another 5xx, with a bounded p99 and flat memory."""
    script = lua_script(folder, {"instances": [SEVEN]}, count_statuses=True)
    url = f"http://127.0.0.1:{PORTS['service']}/predict"
    rss_before = server.rss_mb()
    progress(f"overload: c={connections} for {seconds:g} s on the service")
    cmd = ["taskset", "-c", CLIENT_CORE, "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s"]
    done = subprocess.run(
        [*cmd, "--latency", "-s", str(script), url], capture_output=True, text=True
    )
    statuses = dict(re.findall(r"^status (\d+) (\d+)$", done.stdout, re.M))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    print(
        f"\n| overload c={connections}, {seconds:g} s | req/s | p50 ms | p99 ms | statuses "
        "| RSS before -> after MB |"
    )
    print("|---|---:|---:|---:|---|---|")
    print(
        f"| service | {float(rps.group(1)) if rps else float('nan'):,.0f} "
        f"| {_percentile(done.stdout, '50%'):.2f} | {_percentile(done.stdout, '99%'):.2f} "
        f"| {', '.join(f'{k}: {v}' for k, v in sorted(statuses.items()))} "
        f"| {rss_before:.0f} -> {server.rss_mb():.0f} |"
    )


def runtimes(single: dict[tuple[str, int], list[Result]], args: argparse.Namespace) -> None:
    """The service on its default runtime (ONNX Runtime) against itself on TorchScript."""
    print("\n| single CNN row | ONNX Runtime req/s | TorchScript req/s | ratio | CPU us/req ORT "
          "| TorchScript | ratio | forward us/req ORT | TorchScript |")  # fmt: skip
    print("|---|" + "---:|" * 8)
    for c in args.concurrency:
        o, t = median(single[("service", c)]), median(single[("torchscript", c)])
        print(
            f"| c={c} | {o.rps:,.0f} | {t.rps:,.0f} | {o.rps / t.rps:.2f}x | {o.cpu_us:.0f} "
            f"| {t.cpu_us:.0f} | {o.cpu_us / t.cpu_us:.2f}x | {o.forward_us:.0f} "
            f"| {t.forward_us:.0f} |"
        )


def report(
    servers: dict[str, Server],
    single: dict[tuple[str, int], list[Result]],
    batch: dict[str, list[Result]],
    forward: dict[str, float],
    rss: dict[str, float],
    args: argparse.Namespace,
) -> None:
    print(f"\n{args.rounds} interleaved rounds of {args.seconds:g} s; medians.\n")
    head = (
        "| single vector, CNN | server | req/s | p50 ms | p99 ms | p99/p50 | errors | vs floor "
        "| vs ceiling | vs naive"
    )
    baseline = "baseline" in PORTS
    print(head + " | CPU us/req | forward us/req |" + (" vs baseline |" if baseline else ""))
    print("|---|---|" + "---:|" * (10 + baseline))
    for c in args.concurrency:
        ceiling, naive = median(single[("ceiling", c)]), median(single[("naive", c)])
        floor = median(single[("floor", c)])
        for name in PORTS:
            r = median(single[(name, c)])
            line = (
                f"| c={c} | {name} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
                f"| {r.p99_ms / r.p50_ms:.1f} | {r.errors} | {r.rps / floor.rps:.2f}x "
                f"| {r.rps / ceiling.rps:.2f}x | {r.rps / naive.rps:.2f}x | {r.cpu_us:.0f} "
                f"| {r.forward_us:.0f} |"
            )
            if baseline:
                line += f" {r.rps / median(single[('baseline', c)]).rps:.3f}x |"
            print(line)
    if "torchscript" in PORTS:
        runtimes(single, args)
    print(
        "\n| batch of 256 rows | rows/s | in-process forward rows/s | ratio | p50 ms | errors "
        "| CPU us/row |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for m, results in batch.items():
        r = median(results)
        rows = r.rps * 256
        print(
            f"| {m} (c={args.batch_connections}) | {rows:,.0f} | {forward[m]:,.0f} "
            f"| {rows / forward[m]:.2f}x | {r.p50_ms:.2f} | {r.errors} | {r.cpu_us / 256:.1f} |"
        )
    print("\n| server | cold start to ready s | RSS after the run MB |")
    print("|---|---:|---:|")
    for name, server in servers.items():
        print(f"| {name} | {server.cold_start_s:.2f} | {rss[name]:.0f} |")


def report_v2(
    single: dict[tuple[str, int], list[Result]],
    batch: dict[str, list[Result]],
    v2_single: dict[int, list[Result]],
    v2_batch: dict[str, list[Result]],
    args: argparse.Namespace,
) -> None:
    """The Open Inference Protocol against /predict of the same service, same rounds."""
    print("\n| one row, CNN | /v2 JSON req/s | /predict req/s | /v2 / /predict | p99 ms /v2 "
          "| p99 ms /predict | CPU us/req /v2 | /predict |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for c in args.concurrency:
        v2, predict = median(v2_single[c]), median(single[("service", c)])
        print(
            f"| c={c} | {v2.rps:,.0f} | {predict.rps:,.0f} | {v2.rps / predict.rps:.2f}x "
            f"| {v2.p99_ms:.2f} | {predict.p99_ms:.2f} | {v2.cpu_us:.0f} | {predict.cpu_us:.0f} |"
        )
    print(
        "\n| batch of 256 rows | /v2 binary rows/s | /predict JSON rows/s | ratio "
        "| CPU us/row /v2 | /predict | errors |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for m, results in v2_batch.items():
        v2, predict = median(results), median(batch[m])
        print(
            f"| {m} (c={args.batch_connections}) | {v2.rps * 256:,.0f} | {predict.rps * 256:,.0f} "
            f"| {v2.rps / predict.rps:.2f}x | {v2.cpu_us / 256:.1f} | {predict.cpu_us / 256:.1f} "
            f"| {v2.errors + predict.errors} |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
