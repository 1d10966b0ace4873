"""Reproduction report: every lecture row and every default recipe over several seeds.

``python -m training.report --seeds 5`` fits each model once per seed (0..N-1) on the lecture's
split (``--only default`` / ``--family cnn`` narrow the rows) and prints a markdown table:
mean ± std of train and test accuracy next to the lecture's figure, test errors out of 360,
fit time (also relative to the lecture CNN's, the speed reference) and the in-process forward
time of the TorchScript module at batch 1 and per row at batch 256 (measured once, on the
seed-0 model).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
from dataclasses import dataclass
from typing import Any, Literal

import torch
from tqdm import tqdm

from training.cli import add_threads_argument, positive_int
from training.data import Split, load_split
from training.export import ForwardCost, measure_forward, script_model
from training.fit import train
from training.models import FAMILIES, Family
from training.recipes import DEFAULT, LECTURE_REPORTED, LECTURE_ROWS, Preset

#: The fit-time reference of the report: the lecture's CNN.
SPEED_REFERENCE = "lecture cnn"


@dataclass(frozen=True)
class RowResult:
    """One model's figures over all seeds."""

    key: str
    label: str
    recipe: Literal["lecture", "default"]
    iterations: int
    train: list[float]
    test: list[float]
    errors: list[int]
    fit_seconds: list[float]
    forward: ForwardCost
    reported: tuple[float | None, float] | None


def _mean_std(values: list[float], digits: int = 4) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.{digits}f} ± {std:.{digits}f}"


def run_row(
    key: str,
    chosen: Preset,
    recipe_name: Literal["lecture", "default"],
    split: Split,
    *,
    seeds: list[int],
    iterations: int | None = None,
    bar: tqdm[Any] | None = None,
) -> RowResult:
    """Fit ``chosen`` once per seed and measure the seed-0 model's forward time."""
    recipe = chosen.recipe.with_overrides(iterations=iterations)
    train_acc, test_acc, errors, seconds = [], [], [], []
    forward = None
    for seed in seeds:
        model, result = train(chosen.spec, split, recipe.with_overrides(seed=seed))
        train_acc.append(result.train_accuracy)
        test_acc.append(result.test_accuracy)
        errors.append(round(len(split.y_test) * (1 - result.test_accuracy)))
        seconds.append(result.fit_seconds)
        if forward is None:
            forward = measure_forward(script_model(model))
        if bar is not None:
            bar.update(1)
    assert forward is not None
    return RowResult(
        key,
        chosen.spec.label or key,
        recipe_name,
        recipe.iterations,
        train_acc,
        test_acc,
        errors,
        seconds,
        forward,
        LECTURE_REPORTED.get(key) if recipe_name == "lecture" else None,
    )


def format_report(rows: list[RowResult], n_seeds: int) -> str:
    """The markdown table of the report."""
    reference = next((r for r in rows if f"{r.recipe} {r.key}" == SPEED_REFERENCE), None)
    ref_s = statistics.fmean(reference.fit_seconds) if reference else None
    lines = [
        f"| model | recipe | it. | train acc | test acc ({n_seeds} seeds) | lecture test "
        "| errors /360 (mean, range) | fit s | fit / lecture CNN | fwd µs batch 1 "
        "| fwd µs/row @256 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lecture = "-" if r.reported is None else f"{r.reported[1]:.4f}"
        if r.reported is not None and r.reported[0] is not None:
            lecture += f" (train {r.reported[0]:.4f})"
        fit_s = statistics.fmean(r.fit_seconds)
        ratio = f"{fit_s / ref_s:.2f}x" if ref_s else "-"
        lines.append(
            f"| {r.label} | {r.recipe} | {r.iterations} | {_mean_std(r.train)} "
            f"| {_mean_std(r.test)} | {lecture} "
            f"| {statistics.fmean(r.errors):.1f} ({min(r.errors)}-{max(r.errors)}) "
            f"| {fit_s:.2f} | {ratio} | {r.forward.batch1_us:.1f} "
            f"| {r.forward.per_row_batch256_us:.3f} |"
        )
    return "\n".join(lines)


def get_args_parser() -> argparse.ArgumentParser:
    """The options of ``python -m training.report``."""
    parser = argparse.ArgumentParser(
        prog="python -m training.report",
        description="Rerun every lecture row and every default recipe over several seeds.",
    )
    parser.add_argument(
        "--seeds", type=positive_int, default=5, help="seeds 0..N-1 per model (default: 5)"
    )
    parser.add_argument(
        "--only",
        choices=["lecture", "default"],
        default=None,
        help="report only the lecture rows or only the default recipes (default: both)",
    )
    parser.add_argument(
        "--family",
        nargs="+",
        action="extend",
        choices=FAMILIES,
        help="report only the rows of these families (default: all)",
    )
    parser.add_argument(
        "--iterations",
        type=positive_int,
        default=None,
        help="override every recipe's iterations (a quick smoke run; not the real report)",
    )
    add_threads_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Fit everything, print the machine line and the markdown table."""
    parser = get_args_parser()
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    jobs: list[tuple[str, Preset, Literal["lecture", "default"]]] = []
    if args.only in (None, "lecture"):
        jobs += [(k, p, "lecture") for k, p in LECTURE_ROWS.items()]
    if args.only in (None, "default"):
        jobs += [(k, p, "default") for k, p in DEFAULT.items()]
    families: set[Family] = set(args.family or FAMILIES)
    jobs = [job for job in jobs if job[1].spec.family in families]
    split = load_split()
    seeds = list(range(args.seeds))
    with tqdm(total=len(jobs) * len(seeds), desc="fits", disable=args.no_progress) as bar:
        rows = [
            run_row(k, p, r, split, seeds=seeds, iterations=args.iterations, bar=bar)
            for k, p, r in jobs
        ]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"python {platform.python_version()}, {platform.machine()}, seeds {seeds}"
    )
    print()
    print(format_report(rows, len(seeds)))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
