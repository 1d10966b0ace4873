"""The rows of ``python -m training.report``: what each fits (``Job``, ``report_jobs``) and
the figures it gathers (``SeedResult`` per fit, ``RowResult`` per row)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

from training.contract import ForwardCost
from training.ensemble_spec import ENSEMBLE, EnsembleSpec, ensemble_spec
from training.recipes import DEFAULT, LECTURE_ROWS, Preset
from training.specs import Family

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


def report_jobs(
    only: str | None, families: set[str], cnn_candidates: bool, members: list[str]
) -> list[Job]:
    """The rows to fit, in report order."""
    from training.cv_grid import CANDIDATES

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
