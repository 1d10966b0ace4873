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
table (flag rate on the test rows and on made inputs). The rows are ``training.report_rows``,
the tables ``training.report_tables``.

Every row is fitted on all 1,437 training rows. The default, candidate and ensemble rows are
fitted the way ``python -m training`` exports them: with 5 more fits on folds of the training
rows for out-of-fold logits, on which the temperature is fitted.
"""

from __future__ import annotations

import argparse
import platform
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from training.cli import add_threads_argument, positive_int
from training.data import Split, load_split
from training.ensemble_spec import DEFAULT_MEMBERS, ENSEMBLE, EnsembleSpec, ensemble_spec
from training.fit import train
from training.pipeline import fit_calibrated
from training.recipes import LECTURE_REPORTED
from training.report_rows import Job, RowResult, SeedResult, report_jobs
from training.report_tables import (
    format_calibration,
    format_outliers,
    format_report,
    plot_reliability_panels,
)
from training.scripting import measure_forward, script_model
from training.specs import FAMILIES


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
    return [_row(job, [results[(j, seed)] for seed in seeds_of(job)]) for j, job in enumerate(jobs)]


def _row(job: Job, runs: list[SeedResult]) -> RowResult:
    """The report's row of ``job`` from its fits, one per seed (seed 0's forward time)."""
    forward = next(r.forward for r in runs if r.forward is not None)  # seed 0's
    return RowResult(
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


def get_args_parser() -> argparse.ArgumentParser:
    """The options of ``python -m training.report``."""
    parser = argparse.ArgumentParser(
        prog="python -m training.report",
        description="Rerun every lecture row and every default recipe over several seeds.",
    )
    parser.add_argument(
        "--seeds", type=positive_int, default=5, help="seeds 0..N-1 per model (default: 5)"
    )
    _add_row_arguments(parser)
    _add_run_arguments(parser)
    add_threads_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _add_row_arguments(parser: argparse.ArgumentParser) -> None:
    """Which rows the report holds: lecture or default, families, CNN candidates, members."""
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


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """How the rows are run and drawn: ensemble seeds, processes, iterations, figure."""
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
