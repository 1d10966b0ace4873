"""``python -m training`` (or ``digits-train``): fit families with a named recipe and export them.

Example::

    python -m training --family cnn --recipe default --seed 0     # into var/models/cnn/<n>
    python -m training --ship                                     # into the shipped models/

New versions go to the runtime folder ``var/models`` (``--models-dir``); the shipped
``models/`` (``--shipped-dir``) is written only with ``--ship`` (``make ship``). A version
number is taken after the highest in both folders, so the two never hold the same version.

Each model is fitted on every training row, then once per fold of a 5-fold split of them for
out-of-fold logits; its temperature is fitted on those and folded in (calibrated
probabilities), and the outlier score and threshold are exported inside the module. Each
model gets a tqdm progress bar; at the end a table gives train/test accuracy, test errors out
of the 360 test rows, the final loss, the fit time, the temperature and the test ECE before
and after it, and where each model was written (``<models-dir>/<name>/<version>/`` with
``model.pt``, ``manifest.json``, ``curves.json``, ``curves.png`` and ``reliability.png``).
``--family ensemble`` fits the ``--members`` one after another and exports them as one module.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import torch
from tqdm import tqdm

from training.cli import add_threads_argument, int_at_least, positive_int
from training.contract import Manifest, next_version
from training.data import load_split
from training.digits import OUT_OF_FOLD_FOLDS
from training.ensemble_spec import DEFAULT_MEMBERS, ENSEMBLE, EnsembleSpec, ensemble_spec
from training.fit import Step, StepCallback
from training.pipeline import fit_calibrated, total_steps
from training.recipes import RECIPE_NAMES, Recipe, RecipeName, preset
from training.specs import FAMILIES, Family, ModelSpec

#: What ``--family`` accepts: the single-model families and the ensemble of them.
CHOICES: tuple[str, ...] = (*FAMILIES, ENSEMBLE)


def get_args_parser() -> argparse.ArgumentParser:
    """The command-line options of ``python -m training``."""
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description=(
            "Fit the lecture's digit classifiers on the lecture's split of load_digits "
            "(1,437 train / 360 test rows) and export each as TorchScript with a manifest."
        ),
    )
    _add_fit_arguments(parser)
    _add_output_arguments(parser)
    add_threads_argument(parser)
    parser.add_argument(
        "--no-progress", action="store_true", help="do not show the per-model progress bars"
    )
    return parser


def _add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    """What to fit, and how: families, ensemble members, recipe, seed, iterations."""
    parser.add_argument(
        "--family",
        nargs="+",
        action="extend",
        choices=CHOICES,
        metavar="FAMILY",
        help=f"model families to fit, one or more of {', '.join(CHOICES)}; repeatable "
        f"(default: {', '.join(FAMILIES)})",
    )
    parser.add_argument(
        "--members",
        nargs="+",
        choices=FAMILIES,
        default=list(DEFAULT_MEMBERS),
        metavar="FAMILY",
        help="the ensemble's members, a family per member, repeats allowed, each with its "
        f"family's recipe and its own seed (default: {' '.join(DEFAULT_MEMBERS)})",
    )
    parser.add_argument(
        "--recipe",
        choices=RECIPE_NAMES,
        default="default",
        help="'lecture': the lecture's exact procedure (raw pixels, full-batch SGD lr 0.001 "
        "momentum 0.9); 'default' (the default): the better recipe per family chosen by "
        "cross-validation",
    )
    parser.add_argument(
        "--seed",
        type=int_at_least(0),
        default=0,
        help="seeds weight init, batch order and augmentation (default: 0)",
    )
    parser.add_argument(
        "--iterations",
        type=positive_int,
        default=None,
        help="override the recipe's number of optimizer steps (default: the recipe's own)",
    )


def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the fitted models are exported, and under what name."""
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=Path("var/models"),
        help="the runtime folder new versions are exported into, as <dir>/<name>/<version>/ "
        "(default: ./var/models, served beside the shipped models)",
    )
    parser.add_argument(
        "--shipped-dir",
        type=Path,
        default=Path("models"),
        help="the shipped models (default: ./models): read-only unless --ship; new versions "
        "are numbered after those in both folders, so no two folders hold the same version",
    )
    parser.add_argument(
        "--ship",
        action="store_true",
        help="export into --shipped-dir instead of --models-dir (`make ship`)",
    )
    parser.add_argument(
        "--name",
        default=None,
        help="model name to export under (only with a single --family; default: the family)",
    )


def _progress(bar: tqdm[Any]) -> StepCallback:
    """A fit callback that advances ``bar`` and shows the latest loss and test accuracy."""

    def on_step(step: Step) -> None:
        bar.update(1)
        if step.accuracy is not None:
            bar.set_postfix(loss=f"{step.loss:.4f}", test=f"{step.accuracy.test:.4f}")

    return on_step


def _fit_and_export(family: str, args: argparse.Namespace) -> tuple[Manifest, Path]:
    recipe_name: RecipeName = args.recipe
    split = load_split()
    spec: ModelSpec | EnsembleSpec
    recipe: Recipe | None = None
    if family == ENSEMBLE:
        spec = ensemble_spec(
            args.members, seed=args.seed, recipe=recipe_name, iterations=args.iterations
        )
    else:
        chosen = preset(cast(Family, family), recipe_name)  # argparse checked the name
        recipe = chosen.recipe.with_overrides(seed=args.seed, iterations=args.iterations)
        spec = chosen.spec
    total = total_steps(spec, recipe, OUT_OF_FOLD_FOLDS)
    with tqdm(total=total, desc=f"{family:<8}", disable=args.no_progress, leave=True) as bar:
        fitted = fit_calibrated(spec, split, recipe, on_step=_progress(bar))
    name = args.name or family
    target = args.shipped_dir if args.ship else args.models_dir
    # One sequence of versions across both folders: after the highest in either.
    after = max(next_version(folder / name) - 1 for folder in (args.models_dir, args.shipped_dir))
    manifest = fitted.export(target, name, recipe_name, after_version=after)
    return manifest, Path(target) / manifest.name / str(manifest.version)


def format_table(rows: Sequence[tuple[Manifest, Path]]) -> str:
    """The summary table printed after the fits (one line per exported model)."""
    header = (
        f"{'family':<9}{'model':<14}{'train acc':>10}{'test acc':>10}{'errors':>9}"
        f"{'final loss':>12}{'fit s':>8}{'T':>7}{'test ECE':>17}  path"
    )
    lines = [header, "-" * len(header)]
    for manifest, path in rows:
        m, c = manifest.metrics, manifest.calibration or {}
        temperature = f"{c['temperature']:>7.3f}" if c else f"{'-':>7}"
        ece = f"{c['ece_test_before']:.4f} -> {c['ece_test_after']:.4f}" if c else "-"
        lines.append(
            f"{manifest.family:<9}{f'{manifest.name} v{manifest.version}':<14}"
            f"{m.train_accuracy:>10.4f}{m.test_accuracy:>10.4f}"
            f"{f'{m.test_errors}/{m.n_test}':>9}{m.final_loss:>12.4f}{m.fit_seconds:>8.2f}"
            f"{temperature}{ece:>17}  {path}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), fit, export and print the table; 0 if done."""
    parser = get_args_parser()
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    families: list[str] = list(dict.fromkeys(args.family or FAMILIES))
    if args.name is not None and len(families) != 1:
        parser.error("--name needs exactly one --family (each family is exported under its name)")
    if args.name is not None and (not args.name or "/" in args.name or args.name.startswith(".")):
        parser.error(f"--name must be a plain folder name such as 'cnn-big', got {args.name!r}")
    rows = [_fit_and_export(family, args) for family in families]
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
