"""Deletion test of the occlusion maps (``POST /models/{name}/explain``): not a test, a figure.

    .venv/bin/python bench/explain_deletion.py [--models-dir models] [--seeds 5]
        [--out docs/img/explain_deletion.png]

For each shipped model (version 1 of each folder under ``--models-dir``), on the 360 test
rows of the lecture's split (``training.data.load_split``): each row's occlusion map of its
predicted class (``service.inference.explain.occlusion``, the service's own forward, called
directly rather than over HTTP), then pixels set to 0 one by one, k = 0..64, in the map's
order (highest attribution first) and in random orders (``--seeds`` of them). Printed: the
mean probability of the originally predicted class at a few k, and the area under each
curve over the fraction removed (lower: the order names the pixels the model relies on).
The figure plots the curves.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.inference.explain import area_under, deletion_curve, occlusion  # noqa: E402
from service.inference.inline import forward_of  # noqa: E402
from service.inference.loaded import LoadedModel  # noqa: E402
from service.inference.runtime_torchscript import TorchScriptRuntime  # noqa: E402
from training.contract import (  # noqa: E402
    MODEL_FILE,
    read_manifest,
)
from training.data import load_split  # noqa: E402
from training.digits import N_FEATURES  # noqa: E402

SHOWN_K = (0, 4, 8, 16, 32, 64)


def load(folder: Path) -> LoadedModel:
    """The version in ``folder`` on the CPU, as the service loads it (no sha256 check)."""
    module = torch.jit.load(str(folder / MODEL_FILE), map_location="cpu")
    runtime = TorchScriptRuntime(module, torch.device("cpu"))
    return LoadedModel(read_manifest(folder), runtime, folder)


def curves(model: LoadedModel, rows: np.ndarray, seeds: int) -> dict[str, np.ndarray]:
    """The deletion curve of the occlusion order and of each random order, by name."""
    forward = forward_of(model)
    maps = occlusion(forward, rows)
    # Highest attribution first; ties (pixels already 0) keep pixel order.
    ordered = np.argsort(-maps.attributions, axis=1, kind="stable")
    found = {"occlusion": deletion_curve(forward, rows, ordered, maps.labels)}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        shuffled = np.stack([rng.permutation(N_FEATURES) for _ in rows])
        found[f"random {seed}"] = deletion_curve(forward, rows, shuffled, maps.labels)
    return found


def table(results: dict[str, dict[str, np.ndarray]]) -> str:
    """One line per model and order kind: mean p(label) at a few k, and the area."""
    head = "| model | order | " + " | ".join(f"k={k}" for k in SHOWN_K) + " | AUC |"
    lines = [head, "|" + "---|" * 2 + "---:|" * (len(SHOWN_K) + 1)]
    for name, found in results.items():
        randoms = np.stack([c for key, c in found.items() if key.startswith("random")])
        aucs = [area_under(c) for c in randoms]
        spread = f"{np.mean(aucs):.3f} ± {np.std(aucs):.3f}"
        for label, curve, auc in (
            ("occlusion", found["occlusion"], f"{area_under(found['occlusion']):.3f}"),
            (f"random (x{len(randoms)})", randoms.mean(0), spread),
        ):
            cells = " | ".join(f"{curve[k]:.3f}" for k in SHOWN_K)
            lines.append(f"| {name} | {label} | {cells} | {auc} |")
    return "\n".join(lines)


def plot(results: dict[str, dict[str, np.ndarray]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(3.2 * len(results), 3.2), sharey=True)
    steps = np.arange(N_FEATURES + 1)
    for ax, (name, found) in zip(np.atleast_1d(axes), results.items(), strict=True):
        for key, curve in found.items():
            if key.startswith("random"):
                ax.plot(steps, curve, color="0.6", lw=0.8)
        ax.plot(steps, found["occlusion"], color="C3", lw=2, label="occlusion order")
        ax.plot([], [], color="0.6", lw=0.8, label="random orders")
        ax.set_title(name)
        ax.set_xlabel("pixels set to 0 (k)")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("mean p(predicted class)")
    np.atleast_1d(axes)[0].legend(loc="upper right", fontsize=8)
    fig.suptitle("Deletion test, 360 test rows", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "docs/img/explain_deletion.png")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = load_split().x_test.numpy()
    results = {}
    for folder in sorted(p / "1" for p in args.models_dir.iterdir() if (p / "1").is_dir()):
        start = time.perf_counter()
        results[folder.parent.name] = curves(load(folder), rows, args.seeds)
        print(f"{folder.parent.name}: {time.perf_counter() - start:.1f} s", flush=True)
    print(table(results))
    plot(results, args.out)
    print(f"figure: {args.out}")


if __name__ == "__main__":
    main()
