"""Job cost estimate against measured fits (not a test): the table in docs/train.md.

    .venv/bin/python bench/job_cost.py [--budget 3]

For ten ``POST /train`` bodies spread over the bounds (every family, small and full batches,
small ``acc_step``), resolves the body as the route does, fits it with training's real
``train`` on one torch thread (what a job worker uses) for a bounded number of iterations (a
multiple of ``acc_step``, about ``--budget`` estimated seconds, at least one evaluation),
extrapolates the fit seconds to the whole recipe, and prints estimated vs measured seconds
and their ratio. One warm-up fit first: torch's start-up in a process is not a job's cost.
Run it alone: on a shared machine the measured side varies with the load.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace
from typing import Any

import torch

from service.http.routes.job_request import JobSpec
from training.data import load_split
from training.fit import train
from training.fit_cost import estimate
from training.recipes import Recipe
from training.specs import ModelSpec

BODIES: list[dict[str, Any]] = [
    {"family": "logistic"},
    {"family": "logistic", "recipe": "lecture"},
    {"family": "fnn"},
    {"family": "fnn", "hyperparameters": {"batch_size": 1, "acc_step": 1, "iterations": 2000}},
    {
        "family": "fnn",
        "hyperparameters": {"hidden": 1024, "depth": 3, "batch_size": 4096, "acc_step": 2},
    },
    {"family": "cnn"},
    {"family": "cnn", "recipe": "lecture"},
    {"family": "cnn", "hyperparameters": {"channels": [64, 64], "batch_size": 256, "acc_step": 20}},
    {
        "family": "cnn",
        "hyperparameters": {"channels": [32, 64, 128], "batch_size": 32, "acc_step": 2},
    },
    {  # the spec of issue 21: accepted before, estimated at 7 hours, cut by the time limit
        "family": "cnn",
        "hyperparameters": {
            "channels": [256] * 4,
            "batch_size": 1,
            "acc_step": 1,
            "iterations": 5800,
        },
    },
]


def describe(body: dict[str, Any], spec: ModelSpec, batch: int | None, acc: int, it: int) -> str:
    """A short label: family, architecture, batch, acc_step and iterations."""
    arch = {"logistic": "", "fnn": f" {spec.hidden}x{spec.depth}", "cnn": f" {spec.channels}"}
    rows = "full" if batch is None or batch >= 1437 else str(batch)
    recipe = body.get("recipe", "default")
    return f"{spec.family}{arch[spec.family]} ({recipe}), batch {rows}, acc_step {acc}, {it} it"


def measure(body: dict[str, Any], budget: float) -> tuple[str, float, float, int]:
    """Label, estimated and measured (extrapolated) seconds, iterations actually fitted."""
    spec, recipe = JobSpec.model_validate(body).resolve()
    assert isinstance(spec, ModelSpec)
    assert recipe is not None
    estimated = estimate(spec, recipe).seconds
    per_block = estimate(spec, replace(recipe, iterations=recipe.acc_step)).seconds
    blocks = max(1, min(math.floor(budget / per_block), recipe.iterations // recipe.acc_step))
    fitted = min(blocks * recipe.acc_step, recipe.iterations)
    split = load_split()
    start = time.perf_counter()
    _, result = train(spec, split, replace(recipe, iterations=fitted))
    elapsed = time.perf_counter() - start
    measured = elapsed * recipe.iterations / fitted
    label = describe(body, spec, recipe.batch_size, recipe.acc_step, recipe.iterations)
    assert result.iterations == fitted
    return label, estimated, measured, fitted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=3.0, help="estimated s per spec")
    args = parser.parse_args()
    torch.set_num_threads(1)
    # Torch's first fit in a process pays a one-off start-up (seconds): not a job's cost.
    train(ModelSpec("logistic"), load_split(), Recipe(iterations=20))
    print("| spec | fitted | estimated s | measured s | estimated / measured |")
    print("|---|---:|---:|---:|---:|")
    for body in BODIES:
        label, estimated, measured, fitted = measure(body, args.budget)
        ratio = estimated / measured
        print(f"| {label} | {fitted} | {estimated:,.1f} | {measured:,.1f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
