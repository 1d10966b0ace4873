"""Cross-validation of candidate recipes on the 1,437 TRAINING rows only (never the test rows).

``python -m training.cv [--family cnn] [--folds 5] [--seeds 2]`` splits the training rows into
stratified folds, fits every candidate of a small grid on k-1 folds and scores it on the
held-out fold, once per fit seed (seed ``s * folds + fold``; ``--seeds 1`` is the fold index
alone), then prints per candidate: mean ± std of the fold-and-seed accuracies, the worst of
them, errors over all folds (out of 1,437 per seed) and per seed, the mean fit time,
multiply-adds per row (the serving cost) and the measured forward time per row. The grid is
``training.cv_grid``.

The pick per family follows the one-standard-error rule, weighted by serving cost: among the
candidates whose mean CV accuracy is within one standard error of the best one, take the one
with the fewest multiply-adds per row, then the fewest errors; a full tie keeps the
incumbent default (listed first).
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

import torch

from training.cli import add_threads_argument, positive_int
from training.cv_grid import CANDIDATES
from training.data import Split, fold_indices, held_out_fold, load_split
from training.digits import N_CLASSES, N_FEATURES
from training.fit import train
from training.recipes import DEFAULT, Preset
from training.scripting import measure_forward, script_model
from training.specs import FAMILIES, Family, ModelSpec


@dataclass(frozen=True)
class CVScore:
    """The fold accuracies and costs of one candidate."""

    name: str
    #: One accuracy per (seed, fold) fit, seed-major.
    fold_accuracies: list[float]
    errors: int
    fit_seconds: float
    macs_per_row: int
    forward_us_per_row: float
    #: Held-out errors over all folds, per fit seed (sums to ``errors``).
    seed_errors: tuple[int, ...] = ()

    @property
    def worst(self) -> float:
        return min(self.fold_accuracies)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.fold_accuracies)

    @property
    def std(self) -> float:
        return statistics.stdev(self.fold_accuracies) if len(self.fold_accuracies) > 1 else 0.0

    @property
    def sem(self) -> float:
        return self.std / math.sqrt(len(self.fold_accuracies))


def macs_per_row(spec: ModelSpec) -> int:
    """Multiply-adds of one forward pass on one row (convolutions and linear layers)."""
    if spec.family == "logistic":
        return N_FEATURES * N_CLASSES
    if spec.family == "fnn":
        widths = [N_FEATURES] + [spec.hidden] * spec.depth + [N_CLASSES]
        return sum(a * b for a, b in itertools.pairwise(widths))
    convs = [1, *spec.channels]
    conv = sum(64 * 9 * a * b for a, b in itertools.pairwise(convs))  # 8x8, 3x3
    if spec.batch_norm:  # one multiply-add per activation (the exported module keeps it)
        conv += 64 * sum(spec.channels)
    widths = [spec.channels[-1] * 16]  # after the 2x2 max-pool: 4x4
    if spec.fc_hidden > 0:
        widths.append(spec.fc_hidden)
    return conv + sum(a * b for a, b in itertools.pairwise([*widths, N_CLASSES]))


def folds(split: Split, k: int, seed: int = 0) -> list[Split]:
    """``k`` stratified folds of the training rows, each as a Split (held-out fold as "test")."""
    return [held_out_fold(split, a, b) for a, b in fold_indices(split, k, seed)]


def cross_validate(
    name: str, candidate: Preset, fold_splits: list[Split], seeds: int = 1
) -> CVScore:
    """Fit ``candidate`` on each fold's k-1 parts and score it on the held-out part, once per
    fit seed ``s * len(fold_splits) + fold index`` for ``s`` in ``0..seeds-1``."""
    recipe = replace(candidate.recipe, acc_step=candidate.recipe.iterations)
    accuracies, seed_errors, seconds = [], [], 0.0
    model = None
    for s in range(seeds):
        errors = 0
        for index, fold in enumerate(fold_splits):
            seed = s * len(fold_splits) + index
            model, result = train(candidate.spec, fold, replace(recipe, seed=seed))
            accuracies.append(result.test_accuracy)
            errors += round(len(fold.y_test) * (1 - result.test_accuracy))
            seconds += result.fit_seconds
        seed_errors.append(errors)
    assert model is not None
    cost = measure_forward(script_model(model))
    return CVScore(
        name,
        accuracies,
        sum(seed_errors),
        seconds / len(accuracies),
        macs_per_row(candidate.spec),
        cost.per_row_batch256_us,
        tuple(seed_errors),
    )


def cross_validate_ensemble(
    name: str, families: list[Family], fold_splits: list[Split], seeds: int = 1
) -> CVScore:
    """``cross_validate`` for an ensemble of ``families`` (each its default recipe): ensemble
    seed ``s * len(fold_splits) + fold``, its members seeded from it (``member_seed``)."""
    from training.ensemble import train_ensemble
    from training.ensemble_spec import ensemble_spec

    accuracies, seed_errors, seconds = [], [], 0.0
    model = None
    for s in range(seeds):
        errors = 0
        for index, fold in enumerate(fold_splits):
            spec = ensemble_spec(families, seed=s * len(fold_splits) + index)
            model, result, _ = train_ensemble(spec, fold)
            accuracies.append(result.test_accuracy)
            errors += round(len(fold.y_test) * (1 - result.test_accuracy))
            seconds += result.fit_seconds
        seed_errors.append(errors)
    assert model is not None
    specs = [DEFAULT[f].spec for f in families]
    cost = measure_forward(script_model(model))
    return CVScore(
        name,
        accuracies,
        sum(seed_errors),
        seconds / len(accuracies),
        sum(macs_per_row(spec) for spec in specs),
        cost.per_row_batch256_us,
        tuple(seed_errors),
    )


def pick(scores: list[CVScore]) -> CVScore:
    """The one-standard-error rule weighted by cost: cheapest within 1 SE of the best mean."""
    best = max(scores, key=lambda s: s.mean)
    band = [s for s in scores if s.mean >= best.mean - best.sem]
    # Ties (same cost, same error count) keep the earlier candidate: the incumbent default.
    return min(band, key=lambda s: (s.macs_per_row, s.errors))


def format_scores(family: Family, scores: list[CVScore], n_rows: int, seeds: int = 1) -> str:
    """A markdown table of one family's candidates, with the pick marked.

    *errors* counts over all seeds (out of ``n_rows`` x seeds), *worst fold* is the lowest
    fold-and-seed accuracy; with several seeds a column gives the errors per seed.
    """
    chosen = pick(scores)
    many = seeds > 1
    extra_head = " errors per seed |" if many else ""
    lines = [
        f"### {family}",
        "",
        f"| candidate | CV acc (mean ± std) | errors |{extra_head} worst fold | fit s | MACs/row "
        "| fwd µs/row @256 |",
        "|---|---|---|" + ("---|" if many else "") + "---|---|---|---|",
    ]
    for s in scores:
        mark = " **(pick)**" if s is chosen else ""
        extra = f" {', '.join(str(e) for e in s.seed_errors)} |" if many else ""
        lines.append(
            f"| {s.name}{mark} | {s.mean:.4f} ± {s.std:.4f} | {s.errors}/{n_rows * seeds} |"
            f"{extra} {s.worst:.4f} | {s.fit_seconds:.1f} | {s.macs_per_row:,} "
            f"| {s.forward_us_per_row:.2f} |"
        )
    return "\n".join(lines)


def get_args_parser() -> argparse.ArgumentParser:
    """The options of ``python -m training.cv``."""
    parser = argparse.ArgumentParser(
        prog="python -m training.cv",
        description="k-fold cross-validation of candidate recipes on the training rows only.",
    )
    parser.add_argument(
        "--family", nargs="+", action="extend", choices=FAMILIES, help="families (default: all)"
    )
    add_threads_argument(parser)
    _add_scoring_arguments(parser)
    parser.add_argument(
        "--ensemble",
        nargs="+",
        choices=FAMILIES,
        metavar="FAMILY",
        help="also cross-validate an ensemble of these families (each its default recipe), "
        "e.g. --ensemble cnn cnn: two CNNs averaged, twice a CNN's serving cost",
    )
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="candidates cross-validated at once, one process each with --threads threads "
        "(default: 1)",
    )
    parser.add_argument(
        "--candidates",
        nargs="+",
        action="extend",
        metavar="NAME",
        help="only these candidates (by their exact name in the grid; the family's first, the "
        "incumbent, is always kept)",
    )
    return parser


def _add_scoring_arguments(parser: argparse.ArgumentParser) -> None:
    """How each candidate is scored: the folds, and the fit seeds per fold."""
    parser.add_argument(
        "--folds", type=int, default=5, help="number of stratified folds, >= 2 (default: 5)"
    )
    parser.add_argument(
        "--seeds",
        type=positive_int,
        default=1,
        help="fit seeds per fold, >= 1: every candidate is fitted folds x seeds times (default: 1)",
    )


def main(argv: list[str] | None = None) -> int:
    """Run the grid and print one markdown table per family."""
    parser = get_args_parser()
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.folds < 2:
        parser.error(f"--folds must be >= 2, got {args.folds}")
    families: list[Family] = list(dict.fromkeys(args.family or FAMILIES))
    wanted = set(args.candidates or ())
    known = {n for f in families for n in CANDIDATES[f]}
    if wanted - known:
        parser.error(f"unknown candidates {sorted(wanted - known)}; known: {sorted(known)}")
    split = load_split()
    fold_splits = folds(split, args.folds)
    out = sys.stdout
    out.write(
        f"{args.folds}-fold stratified CV on the {len(split.y_train)} training rows, "
        f"{args.seeds} fit seed(s) per fold\n\n"
    )
    for family in families:
        grid = list(CANDIDATES[family].items())
        grid = [(n, c) for i, (n, c) in enumerate(grid) if not wanted or i == 0 or n in wanted]
        with ProcessPoolExecutor(
            args.jobs, initializer=torch.set_num_threads, initargs=(args.threads,)
        ) as pool:
            futures = [pool.submit(cross_validate, n, c, fold_splits, args.seeds) for n, c in grid]
            if args.ensemble and family == args.ensemble[0]:
                name = f"ensemble ({' + '.join(args.ensemble)})"
                futures.append(
                    pool.submit(
                        cross_validate_ensemble, name, args.ensemble, fold_splits, args.seeds
                    )
                )
            scores = [f.result() for f in futures]
        out.write(format_scores(family, scores, len(split.y_train), args.seeds) + "\n\n")
        out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
