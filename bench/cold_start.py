"""Cold start and memory at rest: process start until the first 200 of the readiness probe,
then the RSS of the serving process tree after a few requests; the service against the naive
reference app, interleaved, in the same run (not a test).

    .venv/bin/python bench/cold_start.py [--rounds 5] [--core 1] [--models-dir models]
        [--torchscript]    # also the service on DIGITS_RUNTIME=torchscript
        [--baseline DIR]   # also the service of another checkout (e.g. a git worktree of main)
        [--bytecode]       # compile the checkout's modules first, as an installed package is

Each round starts the service (``python -m service``, probe ``/health/ready``), then the naive
app (``bench/ref_naive.py`` with the lecture CNN, probe ``/``: it imports torch and loads the
model before it listens), each pinned to ``--core`` (``taskset``), the environment as
``bench/serve_bench.py`` starts them (torch and ONNX Runtime threads 1, a fresh SQLite job
store and versions folder per start); the order alternates between rounds so a drift in
background load hits every server alike. Once ready, each server gets a few one-row requests
(the service: 3 ``/models/<m>/predict`` and 3 ``/v2/models/<m>/infer`` JSON per family; the
naive app: 3 ``/predict``), then the RSS of its process tree (the process and its children,
summed) is read: the memory of the serving tree at rest. Each server is stopped before the
next starts. Prints every start, then the medians and the ratios to the naive app.
``bench/serve_bench.py`` runs the same steps (``--cold-starts``) before its load rounds.

Where ``PYTHONDONTWRITEBYTECODE`` is set (as in this project's sessions), Python compiles every
module of a checkout that has no ``__pycache__`` from source at each start: ~50 modules of
``service/`` and ``training/``, ~0.1 s that an installed package (pip compiles at install, as
in the image) never pays. ``--bytecode`` writes that bytecode first (``compileall``, into the
``__pycache__`` folders git ignores), so the figures are those of an installed service.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from serve_common import (
    FAMILIES,
    ROOT,
    SERVICES,
    SEVEN,
    launch,
    post_json,
    tree_rss_mb,
    v2_json,
    wait_ready,
)

PORTS = {"service": 8110, "naive": 8111, "baseline": 8112, "torchscript": 8113}


@dataclass
class Start:
    """One start of one server: seconds to ready, RSS of its tree at rest (MB)."""

    ready_s: float
    rss_mb: float


def few_requests(name: str, port: int, models_dir: Path) -> None:
    """The few one-row requests a server gets before its RSS at rest is read."""
    base = f"http://127.0.0.1:{port}"
    for _ in range(3):
        if name not in SERVICES:
            post_json(f"{base}/predict", {"instances": [SEVEN]})
            continue
        for family in FAMILIES:
            if (models_dir / family / "1").is_dir():
                post_json(f"{base}/models/{family}/predict", {"instances": [SEVEN]})
                post_json(f"{base}/v2/models/{family}/infer", v2_json([SEVEN]))


def cold_start(name: str, core: str, models_dir: Path, baseline: Path | None) -> Start:
    """Start ``name`` pinned to ``core``: seconds from ``Popen`` until the probe answers 200,
    then a few requests and the RSS of its tree; the server is stopped after."""
    port = PORTS[name]
    scratch = Path(tempfile.mkdtemp(prefix="cold-start-"))
    how = launch(name, port, models_dir, scratch, baseline)
    began = time.perf_counter()
    process = subprocess.Popen(["taskset", "-c", core, *how.cmd], cwd=how.cwd, env=how.env)
    try:
        seconds = wait_ready(name, process, how.probe, began, poll_s=0.005)
        few_requests(name, port, models_dir)
        time.sleep(0.2)  # at rest: the last answer sent, nothing in flight
        return Start(seconds, tree_rss_mb(process.pid))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(scratch, ignore_errors=True)


def cold_starts(
    names: list[str], rounds: int, core: str, models_dir: Path, baseline: Path | None = None
) -> dict[str, list[Start]]:
    """``rounds`` starts of each of ``names``, the order alternating; a line per start."""
    starts: dict[str, list[Start]] = {name: [] for name in names}
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            start = cold_start(name, core, models_dir, baseline)
            starts[name].append(start)
            print(
                f"cold start {round_ + 1}/{rounds}: {name} ready in {start.ready_s:.3f} s, "
                f"RSS at rest {start.rss_mb:.0f} MB",
                flush=True,
            )
    return starts


def compile_bytecode(checkouts: list[Path]) -> None:
    """Write the bytecode of the checkouts' ``service/`` and ``training/`` modules."""
    for checkout in checkouts:
        for package in ("service", "training"):
            compileall.compile_dir(checkout / package, quiet=1)


def bytecode_line(compiled: bool) -> str:
    return (
        f"bytecode of the checkout: {'compiled first' if compiled else 'as found'} "
        f"(PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r})"
    )


def table(starts: dict[str, list[Start]]) -> None:
    """Medians (and ranges) of the starts, and each service's ratio to the naive app."""
    rounds = len(next(iter(starts.values())))
    print(
        f"\n| server | cold start s (median of {rounds}) | min | max | RSS at rest MB (median) "
        "| vs naive: start | RSS |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    naive = starts.get("naive")
    for name, values in starts.items():
        ready = statistics.median(s.ready_s for s in values)
        rss = statistics.median(s.rss_mb for s in values)
        low, high = min(s.ready_s for s in values), max(s.ready_s for s in values)
        ratio = ("", "")
        if naive:
            ratio = (
                f"{ready / statistics.median(s.ready_s for s in naive):.2f}x",
                f"{rss / statistics.median(s.rss_mb for s in naive):.2f}x",
            )
        print(
            f"| {name} | {ready:.2f} | {low:.2f} | {high:.2f} | {rss:.0f} | {ratio[0]} "
            f"| {ratio[1]} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--core", default="1", help="the core every server is pinned to")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument(
        "--torchscript", action="store_true", help="also DIGITS_RUNTIME=torchscript"
    )
    parser.add_argument("--baseline", type=Path, help="another checkout's service, also timed")
    parser.add_argument(
        "--bytecode", action="store_true", help="compile the checkouts' modules first"
    )
    args = parser.parse_args()
    models_dir = args.models_dir.resolve()
    if args.bytecode:
        compile_bytecode([ROOT, *([args.baseline] if args.baseline else [])])
    print(bytecode_line(args.bytecode), flush=True)
    names = ["service", "naive"]
    names += ["torchscript"] if args.torchscript else []
    names += ["baseline"] if args.baseline else []
    table(cold_starts(names, args.rounds, args.core, models_dir, args.baseline))


if __name__ == "__main__":
    main()
