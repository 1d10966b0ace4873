"""Cold start: process start until the first 200 of the readiness probe, the service against
the naive reference app, interleaved, in the same run (not a test).

    .venv/bin/python bench/cold_start.py [--rounds 5] [--core 1] [--models-dir models]
        [--baseline DIR]   # also the service of another checkout (e.g. a git worktree of main)
        [--bytecode]       # compile the checkout's modules first, as an installed package is

Each round starts the service (``python -m service``, probe ``/health/ready``), then the naive
app (``bench/ref_naive.py`` with the lecture CNN, probe ``/``), each pinned to ``--core``
(``taskset``), the environment as ``bench/serve_bench.py`` starts them (torch threads 1, a
fresh SQLite job store and versions folder per start); the order alternates between rounds so
a drift in background load hits both alike. Each server is stopped before the next starts.
Prints every start, then the medians and the ratio service / naive.

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
import sys
import tempfile
import time
from pathlib import Path

from serve_bench import wait_ready  # the sibling benchmark: one readiness wait

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
PORTS = {"service": 8110, "naive": 8111, "baseline": 8112}


def cold_start(name: str, core: str, models_dir: Path, baseline: Path | None) -> float:
    """Seconds from ``Popen`` until the probe answers 200; the server is stopped after."""
    port = PORTS[name]
    env = {**os.environ, "DIGITS_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1"}
    cwd = ROOT
    scratch = Path(tempfile.mkdtemp(prefix="cold-start-"))
    if name == "naive":
        model = models_dir / "cnn" / "1" / "model.pt"
        cmd = [PY, str(ROOT / "bench" / "ref_naive.py"), "--port", str(port), "--model", str(model)]
        probe = f"http://127.0.0.1:{port}/"
    else:
        env |= {"DIGITS_MODELS_DIR": str(models_dir), "DIGITS_LOG_LEVEL": "warning"}
        env |= {"DIGITS_DATABASE_URL": f"sqlite:///{scratch}/jobs.db"}
        env |= {"DIGITS_VERSIONS_DIR": str(scratch / "versions")}
        if name == "baseline" and baseline is not None:
            cwd, env["PYTHONPATH"] = baseline, str(baseline)
        cmd = [PY, "-m", "service", "--port", str(port), "--device", "cpu"]
        probe = f"http://127.0.0.1:{port}/health/ready"
    began = time.perf_counter()
    process = subprocess.Popen(["taskset", "-c", core, *cmd], cwd=cwd, env=env)
    try:
        return wait_ready(name, process, probe, began, poll_s=0.005)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--core", default="1", help="the core every server is pinned to")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--baseline", type=Path, help="another checkout's service, also timed")
    parser.add_argument(
        "--bytecode", action="store_true", help="compile the checkouts' modules first"
    )
    args = parser.parse_args()
    models_dir = args.models_dir.resolve()
    if args.bytecode:
        for checkout in [ROOT, *([args.baseline] if args.baseline else [])]:
            for package in ("service", "training"):
                compileall.compile_dir(checkout / package, quiet=1)
    print(
        f"bytecode of the checkout: {'compiled first' if args.bytecode else 'as found'} "
        f"(PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r})",
        flush=True,
    )
    names = ["service", "naive"] + (["baseline"] if args.baseline else [])
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        order = names if round_ % 2 == 0 else names[::-1]
        for name in order:
            seconds = cold_start(name, args.core, models_dir, args.baseline)
            times[name].append(seconds)
            print(f"round {round_ + 1}: {name} ready in {seconds:.3f} s", flush=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"\n| server | cold start s (median of {args.rounds}) | min | max |")
    print("|---|---|---|---|")
    for name in names:
        low, high = min(times[name]), max(times[name])
        print(f"| {name} | {medians[name]:.2f} | {low:.2f} | {high:.2f} |")
    for name in names:
        if name != "naive":
            ratio = medians[name] / medians["naive"]
            print(f"{name} / naive: {ratio:.2f}x")


if __name__ == "__main__":
    main()
