"""Serving benchmark: the service against a naive and a ceiling FastAPI server, the bare ASGI
floor, and optionally itself on TorchScript and MLServer (not a test).

    .venv/bin/python bench/serve_bench.py [--models-dir models] [--seconds 5] [--rounds 2]
        [--torchscript]    # also this service on DIGITS_RUNTIME=torchscript, side by side
        [--mlserver]       # also MLServer 1.7 serving the CNN's model.onnx (its own venv)
        [--cold-starts 3]  # starts of each server before the load rounds (0: skip)
        [--v2-only]        # only the service (and --torchscript/--mlserver): /predict vs /v2
        [--bytecode]       # compile the checkout's modules first (see bench/cold_start.py)
        [--baseline DIR]   # also the service of another checkout (e.g. a git worktree of main)
        [--overload 30]    # then c=512 on the service alone for 30 s: status codes, p99, RSS

References: ``floor`` (a bare ASGI app on uvicorn answering a constant: the Python floor),
``ceiling`` (FastAPI ``async def`` + pydantic, constant answer) and ``naive`` (FastAPI + one
TorchScript forward per request; it imports torch). ``--torchscript``: the same service on
``DIGITS_RUNTIME=torchscript``. ``--mlserver``: MLServer with a custom runtime serving the
shipped CNN's ``model.onnx`` on ONNX Runtime (``bench/mlserver_ref.py`` says how it is set up:
its own virtual environment under ``bench/.venvs/``, made on the first run, one process,
``parallel_workers: 0``); when it cannot be installed or started, its steps are skipped with
the reason, and the rest runs.

The steps, in order:

1. In-process TorchScript forward of 256 rows per family (the batch table's yardstick).
2. Cold starts (``bench/cold_start.py``): the service, the naive app and, with
   ``--torchscript``, the service on TorchScript, each started alone on core 0 ``--cold-starts``
   times, order alternating: seconds until the readiness probe's first 200, then the RSS of
   the process tree after a few requests (at rest).
3. The references start (and warm up), then the service, last: its first measured step,
   ``/predict`` one row at c=1, is launched the moment ``/health/ready`` first answers 200,
   then c=8 and c=64, no warm-up before them: the tail from readiness (p50, p99, p99/p50).
4. Interleaved rounds: at each concurrency, one CNN row to ``/predict`` of every server, then
   the service's ``/v2`` one row as JSON and MLServer's the same request; then per family
   256-row batches: ``/predict`` JSON and ``/v2`` binary tensors (Triton's binary tensor data
   extension, as ``tritonclient`` sends them) on the service, and ``/v2`` binary on the
   service on TorchScript.
5. The tables, then a summary of issue 24's goals (figure, ratio, met or missed).

Every server is one process pinned to core 0 (``taskset -c 0``), torch and ONNX Runtime
threads 1, uvicorn with uvloop + httptools; ``wrk`` (``apt-get install -y wrk``) is pinned to
core 1. Rounds are interleaved so background load hits every server alike; each figure is
the median over rounds, and "CPU us/req" (the server process's CPU time per request) is what
background load disturbs least. See docs/service.md, "Benchmark".

It prints a line per step as it goes; Ctrl-C stops the servers and exits with status 130.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TypeVar

import cold_start
import mlserver_ref
import torch
from serve_common import (  # the sibling benchmarks import these from here
    CLIENT_CORE,
    FAMILIES,
    PY,
    ROOT,
    SERVER_CORE,
    SERVICES,
    SEVEN,
    Result,
    Server,
    ServerExited,
    launch,
    lua_script,
    mean_batch,
    measure,
    median,
    percentile,
    progress,
    stop,
    v2_binary,
    v2_json,
    wait_ready,
    wrk,
)
from serve_report import Figures, report

__all__ = ["PORTS", "PY", "ROOT", "SEVEN", "Result", "lua_script", "measure", "median"]
__all__ += ["progress", "start", "stop", "wait_ready", "wrk"]

PORTS = {"service": 8100, "naive": 8101, "ceiling": 8102, "floor": 8104}
#: MLServer's HTTP, gRPC and metrics ports (it opens all three).
MLSERVER_PORTS = (8106, 8107, 8108)
K = TypeVar("K")  # the key of a ``Figures`` table of results


def start(name: str, models_dir: Path, baseline: Path | None = None) -> Server:
    """Start one server pinned to the server core; wait until it answers (ready for the service)."""
    port = PORTS[name]
    how = launch(name, port, models_dir, Path(tempfile.mkdtemp()), baseline)
    progress(f"starting {name} on port {port}")
    began = time.perf_counter()
    process = subprocess.Popen(["taskset", "-c", SERVER_CORE, *how.cmd], cwd=how.cwd, env=how.env)
    return Server(name, process, wait_ready(name, process, how.probe, began), port)


def start_mlserver(bin_dir: Path, folder: Path, models_dir: Path) -> Server | str:
    """MLServer on a model repository in ``folder``, pinned to the server core; the server, or
    why it did not become ready (its output is in ``folder/mlserver.log``)."""
    repository = mlserver_ref.write_repository(folder, models_dir, MLSERVER_PORTS)
    port = MLSERVER_PORTS[0]
    progress(f"starting mlserver on port {port}")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = folder / "mlserver.log"
    began = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *mlserver_ref.command(bin_dir, repository)],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    probe = f"http://127.0.0.1:{port}/v2/models/{mlserver_ref.MODEL}/ready"
    try:
        return Server("mlserver", process, wait_ready("mlserver", process, probe, began), port)
    except ServerExited as exc:
        return f"{exc}: {mlserver_ref.why(log)} (all of it in {log})"


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


def main() -> int:
    try:
        return run()
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped, no figures", file=sys.stderr)
        return 130


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one wrk step")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--batch-connections", type=int, default=4)
    parser.add_argument(
        "--cold-starts",
        type=int,
        help="starts of each server for the cold start and RSS at rest (default 3; 0 with "
        "--v2-only)",
    )
    parser.add_argument(
        "--bytecode", action="store_true", help="compile the checkout's modules first"
    )
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
        "--mlserver",
        action="store_true",
        help="also MLServer serving the CNN's model.onnx (bench/mlserver_ref.py), /v2 one row",
    )
    parser.add_argument(
        "--v2-only",
        action="store_true",
        help="only the service: /predict against /v2 (more rounds in the same time)",
    )
    args = parser.parse_args()
    args.models_dir = args.models_dir.resolve()
    if args.cold_starts is None:
        args.cold_starts = 0 if args.v2_only else 3
    return args


def run() -> int:
    args = arguments()
    if args.baseline is not None:
        PORTS["baseline"] = 8103
    if args.torchscript:
        PORTS["torchscript"] = 8105
    if args.v2_only:
        for name in ("naive", "ceiling", "floor", "baseline"):
            PORTS.pop(name, None)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get update && apt-get install -y wrk")
    families = [m for m in FAMILIES if (args.models_dir / m / "1").is_dir()]
    f = Figures(args, list(PORTS), families, os.getloadavg())
    mlserver_bin = None
    if args.mlserver:
        got = mlserver_ref.ensure_venv(mlserver_ref.VENV.parent / "mlserver-install.log")
        if isinstance(got, str):
            f.skipped["mlserver"] = got
            progress(f"mlserver: skipped: {got}")
        else:
            mlserver_bin = got
    os.sched_setaffinity(0, {int(SERVER_CORE)})
    torch.set_num_threads(1)
    for m in families:
        f.forward[m] = forward_rows_per_s(args.models_dir, m)
        progress(f"in-process TorchScript forward, {m}, batch 256: {f.forward[m]:,.0f} rows/s")
    os.sched_setaffinity(0, {int(SERVER_CORE), int(CLIENT_CORE)})
    if args.bytecode:
        cold_start.compile_bytecode([ROOT, *([args.baseline] if args.baseline else [])])
    f.bytecode = cold_start.bytecode_line(args.bytecode)
    progress(f.bytecode)
    if args.cold_starts > 0:
        names = ["service", "naive"] + (["torchscript"] if args.torchscript else [])
        f.cold = cold_start.cold_starts(names, args.cold_starts, SERVER_CORE, args.models_dir)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            measure_all(f, Path(tmp), mlserver_bin)
    finally:
        stop(f.servers.values())
    f.load_after = os.getloadavg()
    report(f)
    return 0


def measure_all(f: Figures, folder: Path, mlserver_bin: Path | None) -> None:
    """Start the servers (the service last), the steps from readiness, the rounds."""
    args = f.args
    one = lua_script(folder, {"instances": [SEVEN]})
    rows = lua_script(folder, {"instances": [SEVEN] * 256})
    v2_one = lua_script(folder, v2_json([SEVEN]))
    v2_rows = v2_binary(folder, [SEVEN] * 256)
    for name in PORTS:
        if name != "service":
            f.servers[name] = start(name, args.models_dir, args.baseline)
            progress(f"{name} ready in {f.servers[name].cold_start_s:.2f} s")
    if mlserver_bin is not None:
        shutil.rmtree(mlserver_ref.RUN, ignore_errors=True)  # the last run's repository, log
        mlserver_ref.RUN.mkdir(parents=True)
        got = start_mlserver(mlserver_bin, mlserver_ref.RUN, args.models_dir)
        if isinstance(got, str):
            f.skipped["mlserver"] = got
            progress(f"mlserver: skipped: {got}")
        else:
            f.servers["mlserver"] = got
            progress(f"mlserver ready in {got.cold_start_s:.2f} s")
    for name, server in f.servers.items():
        if name in SERVICES:
            progress(f"{name}: its job workers warmed, idle after {server.settle():.1f} s")
    url = {name: f"http://127.0.0.1:{server.port}" for name, server in f.servers.items()}
    for name in f.servers:  # warm-up of the references (never of the service)
        if name == "mlserver":
            wrk(f"{url[name]}/v2/models/cnn/infer", v2_one, 8, 1)
        else:
            wrk(f"{url[name]}/predict", one, 8, 1)
        if name == "torchscript":
            wrk(f"{url[name]}/v2/models/cnn/infer", v2_rows, 2, 1)
    # The service last: its first step begins when it says ready.
    f.servers = {"service": start("service", args.models_dir), **f.servers}
    ready = time.perf_counter()
    service = f.servers["service"]
    url["service"] = f"http://127.0.0.1:{service.port}"
    progress(f"service ready in {service.cold_start_s:.2f} s: measuring from readiness")
    for c in args.concurrency:
        after = time.perf_counter() - ready
        result = measure(service, f"{url['service']}/predict", one, c, args.seconds)
        f.ready[c] = (after, result)
        progress(f"from readiness (+{after:.3f} s), c={c}, service: {result}")

    def record(
        results: dict[K, list[Result]],
        key: K,
        name: str,
        path: str,
        script: Path,
        conns: int,
        label: str,
    ) -> None:
        """One step of a round: ``path`` of server ``name`` measured, the result appended to
        ``results[key]`` and printed after ``label``."""
        result = measure(f.servers[name], url[name] + path, script, conns, args.seconds)
        results.setdefault(key, []).append(result)
        progress(f"{label}: {result}")

    conns = args.batch_connections
    for round_ in range(1, args.rounds + 1):
        step = f"round {round_}/{args.rounds}"
        for c in args.concurrency:
            at = f"{step}, c={c}"
            for name in PORTS:
                record(f.single, (name, c), name, "/predict", one, c, f"{at}, {name}")
            v2 = "/v2/models/cnn/infer"
            record(f.v2_single, c, "service", v2, v2_one, c, f"{at}, service /v2 JSON")
            if "mlserver" in f.servers:
                record(f.mlserver, c, "mlserver", v2, v2_one, c, f"{at}, mlserver /v2 JSON")
        for m in f.families:
            at, v2 = f"{step}, batch 256, {m}", f"/v2/models/{m}/infer"
            record(
                f.batch, m, "service", f"/models/{m}/predict", rows, conns, f"{at}, /predict JSON"
            )
            record(f.v2_batch, m, "service", v2, v2_rows, conns, f"{at}, /v2 binary")
            if "torchscript" in f.servers:
                label = f"{at}, torchscript /v2 binary"
                record(f.ts_batch, m, "torchscript", v2, v2_rows, conns, label)
    f.rss_after = {name: s.rss_mb() for name, s in f.servers.items()}
    f.mean_batch = mean_batch(service.port)
    progress(f"service: mean CNN rows per forward over the run: {f.mean_batch:.1f}")
    if args.overload > 0:
        overload(service, folder, args.overload)


def overload(server: Server, folder: Path, seconds: float, connections: int = 512) -> None:
    """Far more clients than the service can serve: it must shed load (429 at the queue
    bound, 504 past a deadline), never another 5xx, with a bounded p99 and flat memory."""
    script = lua_script(folder, {"instances": [SEVEN]}, count_statuses=True)
    url = f"http://127.0.0.1:{server.port}/predict"
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
        f"| {percentile(done.stdout, '50%'):.2f} | {percentile(done.stdout, '99%'):.2f} "
        f"| {', '.join(f'{k}: {v}' for k, v in sorted(statuses.items()))} "
        f"| {rss_before:.0f} -> {server.rss_mb():.0f} |"
    )


if __name__ == "__main__":
    raise SystemExit(main())
