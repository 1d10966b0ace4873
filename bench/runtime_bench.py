"""ONNX Runtime vs TorchScript: the forward time of the shipped models, in-process, one thread.

    .venv/bin/python bench/runtime_bench.py [--models-dir models] [--blocks 15] [--seconds 0.2]

Each case (model, rows) is loaded in both runtimes as the service loads it
(``service.inference.runtime_torchscript.load`` / ``runtime_onnx.load``, sha256 checked, one
intra-op thread each: ``torch.set_num_threads(1)`` and the session's ``intra_op_num_threads``
1) and warmed. Then timed blocks of about ``--seconds`` of forwards each, the two runtimes
alternating block by block so that background load hits both alike; the figure is the mean
call time of each runtime's fastest block (and the median block, for the spread). The forward
is the whole ``Runtime.forward``: numpy rows in, the (N, 11) probabilities + score out.
Printed: a markdown table with the ratio ONNX Runtime / TorchScript (< 1: ONNX Runtime is
faster) and the largest probability difference between the two on the rows timed.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.inference import runtime_onnx, runtime_torchscript  # noqa: E402
from service.inference.runtime import Runtime  # noqa: E402
from training.contract import read_manifest  # noqa: E402
from training.data import load_split  # noqa: E402
from training.digits import N_CLASSES  # noqa: E402

CASES = (("cnn", 1), ("cnn", 256), ("ensemble", 1), ("ensemble", 256), ("fnn", 1), ("logistic", 1))
CPU = torch.device("cpu")


def block_us(runtime: Runtime, rows: np.ndarray, seconds: float) -> float:
    """Mean call time (us) over a block of about ``seconds`` of forwards."""
    calls, start = 0, time.perf_counter()
    while True:
        runtime.forward(rows)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed / calls * 1e6


def measure(folder: Path, rows: np.ndarray, blocks: int, seconds: float) -> dict[str, float]:
    """Best and median block of each runtime on ``rows``, and their largest difference."""
    manifest = read_manifest(folder)
    runtimes: dict[str, Runtime] = {
        "torchscript": runtime_torchscript.load(folder, manifest, CPU, 1),
        "onnxruntime": runtime_onnx.load(folder, manifest, CPU, 1),
    }
    for runtime in runtimes.values():
        runtime.warm_up()
        block_us(runtime, rows, seconds)
    times: dict[str, list[float]] = {name: [] for name in runtimes}
    for _ in range(blocks):
        for name, runtime in runtimes.items():
            times[name].append(block_us(runtime, rows, seconds))
    a, b = (runtimes[n].forward(rows)[:, :N_CLASSES] for n in ("torchscript", "onnxruntime"))
    return {
        **{f"{n}_best": min(t) for n, t in times.items()},
        **{f"{n}_median": statistics.median(t) for n, t in times.items()},
        "max_diff": float(np.abs(a - b).max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--blocks", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=0.2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    x = load_split().x_test.numpy()
    print(
        f"torch {torch.__version__}, onnxruntime {runtime_onnx.ort.__version__}, "
        f"{platform.processor() or platform.machine()}, threads 1, "
        f"{args.blocks} blocks of {args.seconds} s per runtime"
    )
    print(
        "| model | rows | TorchScript us (median) | ONNX Runtime us (median) "
        "| ONNX Runtime / TorchScript | max abs diff |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, n in CASES:
        rows = np.ascontiguousarray(x[:n])
        r = measure(args.models_dir / name / "1", rows, args.blocks, args.seconds)
        ts, ort_ = r["torchscript_best"], r["onnxruntime_best"]
        print(
            f"| {name} | {n} | {ts:.1f} ({r['torchscript_median']:.1f}) "
            f"| {ort_:.1f} ({r['onnxruntime_median']:.1f}) | {ort_ / ts:.2f} "
            f"| {r['max_diff']:.1e} |"
        )


if __name__ == "__main__":
    main()
