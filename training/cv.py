"""Cross-validation of candidate recipes on the 1,437 TRAINING rows only (never the test rows).

``python -m training.cv [--family cnn] [--folds 5]`` splits the training rows into stratified
folds, fits every candidate of a small grid on k-1 folds and scores it on the held-out fold,
then prints per candidate: mean ± std of the fold accuracies, errors out of 1,437, the mean
fit time, multiply-adds per row (the serving cost) and the measured forward time per row.

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
from dataclasses import dataclass, replace

import torch
from sklearn.model_selection import StratifiedKFold

from training.data import N_CLASSES, N_FEATURES, Split, load_split
from training.export import measure_forward, script_model
from training.fit import train
from training.models import FAMILIES, Family, ModelSpec
from training.recipes import DEFAULT, Preset


def _variant(family: Family, spec: dict[str, object], recipe: dict[str, object]) -> Preset:
    base = DEFAULT[family]
    return Preset(replace(base.spec, **spec), replace(base.recipe, **recipe))  # type: ignore[arg-type]  # keyword dicts


#: The grid: a few one-change variants around each family's default (kept small on purpose).
CANDIDATES: dict[Family, dict[str, Preset]] = {
    "logistic": {
        "default (adam 0.03, no smoothing)": DEFAULT["logistic"],
        "lr 0.01": _variant("logistic", {}, {"lr": 0.01}),
        "label smoothing 0.1": _variant("logistic", {}, {"label_smoothing": 0.1}),
        "weight decay 1e-3": _variant("logistic", {}, {"weight_decay": 1e-3}),
        "1000 iterations": _variant("logistic", {}, {"iterations": 1000}),
    },
    "fnn": {
        "default (256, dropout 0.2, 3000 it)": DEFAULT["fnn"],
        "2000 iterations": _variant("fnn", {}, {"iterations": 2000}),
        "hidden 512": _variant("fnn", {"hidden": 512}, {}),
        "dropout 0.4": _variant("fnn", {"dropout": 0.4}, {}),
        "lr 0.001": _variant("fnn", {}, {"lr": 0.001}),
        "adamw, weight decay 0.05": _variant(
            "fnn", {}, {"optimizer": "adamw", "weight_decay": 0.05}
        ),
        "+ shift augmentation": _variant("fnn", {}, {"augment_shift": True}),
    },
    "cnn": {
        "default (16,32)": DEFAULT["cnn"],
        "channels (8,16)": _variant("cnn", {"channels": (8, 16)}, {}),
        "channels (32,64)": _variant("cnn", {"channels": (32, 64)}, {}),
        "(16,32) no shift aug.": _variant("cnn", {}, {"augment_shift": False}),
    },
}


@dataclass(frozen=True)
class CVScore:
    """The fold accuracies and costs of one candidate."""

    name: str
    fold_accuracies: list[float]
    errors: int
    fit_seconds: float
    macs_per_row: int
    forward_us_per_row: float

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
    return conv + spec.channels[-1] * 16 * N_CLASSES  # after the 2x2 max-pool: 4x4


def folds(split: Split, k: int, seed: int = 0) -> list[Split]:
    """``k`` stratified folds of the training rows, each as a Split (held-out fold as "test")."""
    kfold = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    out = []
    for fit_idx, val_idx in kfold.split(split.x_train.numpy(), split.y_train.numpy()):
        out.append(
            Split(
                x_train=split.x_train[fit_idx],
                y_train=split.y_train[fit_idx],
                x_test=split.x_train[val_idx],
                y_test=split.y_train[val_idx],
                random_state=split.random_state,
            )
        )
    return out


def cross_validate(name: str, candidate: Preset, fold_splits: list[Split]) -> CVScore:
    """Fit ``candidate`` on each fold's k-1 parts and score it on the held-out part."""
    recipe = replace(candidate.recipe, acc_step=candidate.recipe.iterations)
    accuracies, errors, seconds = [], 0, 0.0
    model = None
    for index, fold in enumerate(fold_splits):
        model, result = train(candidate.spec, fold, replace(recipe, seed=index))
        accuracies.append(result.test_accuracy)
        errors += round(len(fold.y_test) * (1 - result.test_accuracy))
        seconds += result.fit_seconds
    assert model is not None
    cost = measure_forward(script_model(model))
    return CVScore(
        name,
        accuracies,
        errors,
        seconds / len(fold_splits),
        macs_per_row(candidate.spec),
        cost.per_row_batch256_us,
    )


def pick(scores: list[CVScore]) -> CVScore:
    """The one-standard-error rule weighted by cost: cheapest within 1 SE of the best mean."""
    best = max(scores, key=lambda s: s.mean)
    band = [s for s in scores if s.mean >= best.mean - best.sem]
    # Ties (same cost, same error count) keep the earlier candidate: the incumbent default.
    return min(band, key=lambda s: (s.macs_per_row, s.errors))


def format_scores(family: Family, scores: list[CVScore], n_rows: int) -> str:
    """A markdown table of one family's candidates, with the pick marked."""
    chosen = pick(scores)
    lines = [
        f"### {family}",
        "",
        "| candidate | CV acc (mean ± std) | errors | fit s | MACs/row | fwd µs/row @256 |",
        "|---|---|---|---|---|---|",
    ]
    for s in scores:
        mark = " **(pick)**" if s is chosen else ""
        lines.append(
            f"| {s.name}{mark} | {s.mean:.4f} ± {s.std:.4f} | {s.errors}/{n_rows} "
            f"| {s.fit_seconds:.1f} | {s.macs_per_row:,} | {s.forward_us_per_row:.2f} |"
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
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads; 1 (the default) is fastest for these tiny models "
        "on a shared machine",
    )
    parser.add_argument(
        "--folds", type=int, default=5, help="number of stratified folds, >= 2 (default: 5)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the grid and print one markdown table per family."""
    parser = get_args_parser()
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    if args.folds < 2:
        parser.error(f"--folds must be >= 2, got {args.folds}")
    split = load_split()
    fold_splits = folds(split, args.folds)
    families: list[Family] = list(dict.fromkeys(args.family or FAMILIES))
    out = sys.stdout
    out.write(f"{args.folds}-fold stratified CV on the {len(split.y_train)} training rows\n\n")
    for family in families:
        scores = [cross_validate(n, c, fold_splits) for n, c in CANDIDATES[family].items()]
        out.write(format_scores(family, scores, len(split.y_train)) + "\n\n")
        out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
