"""Reproduction report: every lecture row, every default recipe and the ensemble over seeds.

``python -m training.report --seeds 10`` fits each model once per seed (0..N-1) on the lecture's
split (``--only default`` / ``--family cnn`` narrow the rows; ``--cnn-candidates`` adds the CNN
recipes of the cross-validation grid) and prints a markdown table: mean ± std of train and
test accuracy next to the lecture's figure, test errors out of 360 (mean, range), fit time
(also relative to the lecture CNN's, the speed reference), the in-process forward time of the
TorchScript module at batch 1 and per row at batch 256 (measured once, on the seed-0 model)
and, for the calibrated rows, the test and out-of-fold ECE before -> after the temperature.
Then the calibration table (T; ECE, NLL, Brier, mean confidence of right and wrong answers
on the test rows, before -> after), the reliability diagrams (``--figure``) and the outlier
table (flag rate on the test rows and on made inputs: ``training.report_tables``).

Every row is fitted on all 1,437 training rows. The default, candidate and ensemble rows are
fitted the way ``python -m training`` exports them: with 5 more fits on folds of the training
rows for out-of-fold logits, on which the temperature is fitted.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import torch
from tqdm import tqdm

from training.cli import add_threads_argument, positive_int
from training.data import Split, load_split
from training.ensemble import DEFAULT_MEMBERS, ENSEMBLE, EnsembleSpec, ensemble_spec
from training.fit import train
from training.models import FAMILIES, Family
from training.pipeline import fit_calibrated
from training.recipes import DEFAULT, LECTURE_REPORTED, LECTURE_ROWS, Preset
from training.report_tables import format_calibration, format_outliers, plot_reliability_panels
from training.scripting import ForwardCost, measure_forward, script_model

#: The fit-time reference of the report: the lecture's CNN.
SPEED_REFERENCE = "lecture cnn"


RowRecipe = Literal["lecture", "default", "candidate"]


@dataclass(frozen=True)
class Job:
    """One row of the report: what to fit, under which recipe, calibrated or not."""

    key: str
    label: str
    recipe: RowRecipe
    model: Preset | EnsembleSpec
    calibrated: bool

    @property
    def family(self) -> str:
        return ENSEMBLE if isinstance(self.model, EnsembleSpec) else self.model.spec.family


@dataclass(frozen=True)
class SeedResult:
    """One fit's figures (``forward`` measured on seed 0 only; ECE only when calibrated)."""

    train: float
    test: float
    errors: int
    fit_seconds: float
    iterations: int
    forward: ForwardCost | None
    calibration: dict[str, float] | None
    #: Seed 0's reliability bins of the test rows, before and after (calibrated rows only).
    bins: dict[str, list[dict[str, float]]] | None = None


@dataclass(frozen=True)
class RowResult:
    """One model's figures over all seeds."""

    key: str
    label: str
    recipe: RowRecipe
    iterations: int
    train: list[float]
    test: list[float]
    errors: list[int]
    fit_seconds: list[float]
    forward: ForwardCost
    reported: tuple[float | None, float] | None
    #: Per seed, the manifest's calibration figures (``None`` for uncalibrated rows).
    calibration: list[dict[str, float]] | None = None
    bins: dict[str, list[dict[str, float]]] | None = None


def _mean_std(values: list[float], digits: int = 4) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.{digits}f} ± {std:.{digits}f}"


def fit_seed(job: Job, seed: int, split: Split, iterations: int | None = None) -> SeedResult:
    """Fit ``job``'s model with ``seed`` (calibrated: as exported) and return its figures."""
    report = None
    if isinstance(job.model, EnsembleSpec):
        families = [m.spec.family for m in job.model.members]
        spec = ensemble_spec(families, seed=seed, iterations=iterations)
        fitted = fit_calibrated(spec, split)
        model, result, report = fitted.model, fitted.result, fitted.calibration
    else:
        recipe = job.model.recipe.with_overrides(iterations=iterations, seed=seed)
        if job.calibrated:
            fitted = fit_calibrated(job.model.spec, split, recipe)
            model, result, report = fitted.model, fitted.result, fitted.calibration
        else:
            model, result = train(job.model.spec, split, recipe)
    n_test = len(split.y_test)
    return SeedResult(
        result.train_accuracy,
        result.test_accuracy,
        round(n_test * (1 - result.test_accuracy)),
        result.fit_seconds,
        result.iterations,
        measure_forward(script_model(model)) if seed == 0 else None,
        None if report is None else report.figures,
        None if report is None or seed != 0 else report.bins["test"],
    )


def run_rows(
    jobs: list[Job],
    split: Split,
    *,
    seeds: list[int],
    ensemble_seeds: list[int] | None = None,
    iterations: int | None = None,
    workers: int = 1,
    threads: int = 1,
    bar: tqdm[Any] | None = None,
) -> list[RowResult]:
    """Fit every job once per seed (the ensemble: per ``ensemble_seeds``, default ``seeds``)
    in ``workers`` processes and gather the rows; the seeds must hold 0 (its model's forward
    time is the row's)."""

    def seeds_of(job: Job) -> list[int]:
        if job.family == ENSEMBLE and ensemble_seeds is not None:
            return ensemble_seeds
        return seeds

    with ProcessPoolExecutor(
        workers, initializer=torch.set_num_threads, initargs=(threads,)
    ) as pool:
        futures = {
            (j, seed): pool.submit(fit_seed, job, seed, split, iterations)
            for j, job in enumerate(jobs)
            for seed in seeds_of(job)
        }
        results: dict[tuple[int, int], SeedResult] = {}
        for key, future in futures.items():
            results[key] = future.result()
            if bar is not None:
                bar.update(1)
    rows = []
    for j, job in enumerate(jobs):
        runs = [results[(j, seed)] for seed in seeds_of(job)]
        forward = next(r.forward for r in runs if r.forward is not None)  # seed 0's
        rows.append(
            RowResult(
                job.key,
                job.label,
                job.recipe,
                runs[0].iterations,
                [r.train for r in runs],
                [r.test for r in runs],
                [r.errors for r in runs],
                [r.fit_seconds for r in runs],
                forward,
                LECTURE_REPORTED.get(job.key) if job.recipe == "lecture" else None,
                [r.calibration for r in runs if r.calibration] if job.calibrated else None,
                next((r.bins for r in runs if r.bins), None),
            )
        )
    return rows


def _ece(row: RowResult, rows: str) -> str:
    if not row.calibration:
        return "-"
    before = statistics.fmean(c[f"ece_{rows}_before"] for c in row.calibration)
    after = statistics.fmean(c[f"ece_{rows}_after"] for c in row.calibration)
    return f"{before:.4f} → {after:.4f}"


def format_report(rows: list[RowResult], n_seeds: int) -> str:
    """The markdown table of the report."""
    reference = next((r for r in rows if f"{r.recipe} {r.key}" == SPEED_REFERENCE), None)
    ref_s = statistics.fmean(reference.fit_seconds) if reference else None
    lines = [
        f"| model | recipe | it. | train acc | test acc ({n_seeds} seeds) | lecture test "
        "| errors /360 (mean, range) | fit s | fit / lecture CNN | fwd µs batch 1 "
        "| fwd µs/row @256 | T | test ECE | out-of-fold ECE |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        label = r.label if len(r.test) == n_seeds else f"{r.label}, {len(r.test)} seeds"
        lecture = "-" if r.reported is None else f"{r.reported[1]:.4f}"
        if r.reported is not None and r.reported[0] is not None:
            lecture += f" (train {r.reported[0]:.4f})"
        fit_s = statistics.fmean(r.fit_seconds)
        ratio = f"{fit_s / ref_s:.2f}x" if ref_s else "-"
        temperature = (
            f"{statistics.fmean(c['temperature'] for c in r.calibration):.3f}"
            if r.calibration
            else "-"
        )
        lines.append(
            f"| {label} | {r.recipe} | {r.iterations} | {_mean_std(r.train)} "
            f"| {_mean_std(r.test)} | {lecture} "
            f"| {statistics.fmean(r.errors):.1f} ({min(r.errors)}-{max(r.errors)}) "
            f"| {fit_s:.2f} | {ratio} | {r.forward.batch1_us:.1f} "
            f"| {r.forward.per_row_batch256_us:.3f} | {temperature} | {_ece(r, 'test')} "
            f"| {_ece(r, 'out_of_fold')} |"
        )
    return "\n".join(lines)


def report_jobs(
    only: str | None, families: set[str], cnn_candidates: bool, members: list[str]
) -> list[Job]:
    """The rows to fit, in report order."""
    from training.cv import CANDIDATES

    jobs: list[Job] = []
    if only in (None, "lecture"):
        jobs += [Job(k, p.spec.label or k, "lecture", p, False) for k, p in LECTURE_ROWS.items()]
    if only in (None, "default"):
        jobs += [Job(k, p.spec.label or k, "default", p, True) for k, p in DEFAULT.items()]
        spec = ensemble_spec([cast(Family, m) for m in members])  # argparse checked them
        label = f"ensemble ({' + '.join(members)})"
        jobs.append(Job(ENSEMBLE, label, "default", spec, True))
    if cnn_candidates:
        incumbent = DEFAULT["cnn"]
        jobs += [
            Job(f"cnn {name}", f"CNN, {name}", "candidate", p, True)
            for name, p in CANDIDATES["cnn"].items()
            if p != incumbent
        ]
    return [job for job in jobs if job.family in families]


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
        choices=["lecture", "default", "none"],
        default=None,
        help="report only the lecture rows or only the default recipes and the ensemble "
        "(default: both; 'none' with --cnn-candidates: the candidates alone)",
    )
    parser.add_argument(
        "--family",
        nargs="+",
        action="extend",
        choices=(*FAMILIES, ENSEMBLE),
        help="report only the rows of these families (default: all)",
    )
    parser.add_argument(
        "--cnn-candidates",
        action="store_true",
        help="add a row per CNN recipe of the cross-validation grid (training.cv)",
    )
    parser.add_argument(
        "--members",
        nargs="+",
        choices=FAMILIES,
        default=list(DEFAULT_MEMBERS),
        help=f"the ensemble row's members (default: {' '.join(DEFAULT_MEMBERS)})",
    )
    parser.add_argument(
        "--ensemble-seeds",
        type=positive_int,
        default=5,
        help="seeds 0..N-1 of the ensemble row (default: 5; its members get their own seeds)",
    )
    parser.add_argument(
        "--jobs", type=positive_int, default=1, help="fits run at once, a process each"
    )
    parser.add_argument(
        "--iterations",
        type=positive_int,
        default=None,
        help="override every recipe's iterations (a quick smoke run; not the real report)",
    )
    parser.add_argument(
        "--figure",
        type=Path,
        default=Path("var/report/reliability.png"),
        help="where the reliability diagrams go (default: var/report/reliability.png)",
    )
    add_threads_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Fit everything, print the machine line and the markdown table."""
    parser = get_args_parser()
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    jobs = report_jobs(
        args.only, set(args.family or (*FAMILIES, ENSEMBLE)), args.cnn_candidates, args.members
    )
    split = load_split()
    seeds, ensemble_seeds = list(range(args.seeds)), list(range(args.ensemble_seeds))
    total = sum(len(ensemble_seeds if j.family == ENSEMBLE else seeds) for j in jobs)
    with tqdm(total=total, desc="fits", disable=args.no_progress) as bar:
        rows = run_rows(
            jobs,
            split,
            seeds=seeds,
            ensemble_seeds=ensemble_seeds,
            iterations=args.iterations,
            workers=args.jobs,
            threads=args.threads,
            bar=bar,
        )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"python {platform.python_version()}, {platform.machine()}, seeds {seeds}"
    )
    print()
    print(format_report(rows, len(seeds)))
    calibrated = [r for r in rows if r.calibration]
    if calibrated:
        print("\nCalibration on the 360 test rows (mean over seeds, before → after T):\n")
        print(format_calibration([(r.label, r.calibration or []) for r in calibrated]))
        plot_reliability_panels([(r.label, r.bins or {}) for r in calibrated], args.figure)
        print(f"\nreliability diagrams (seed 0, test rows): {args.figure}")
    print("\nOutlier flag (threshold from the training rows only):\n")
    print(format_outliers(split))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
