"""One fit loop for every family and recipe.

``fit`` records the loss of every iteration and the train/test accuracy every ``acc_step``
iterations, reports each step to an optional callback, and stops early when the callback
returns ``STOP`` (``True``), as scipy's optimizer callbacks do. For a given seed it is
deterministic on one machine.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from training.data import Split
from training.models import ModelSpec, build_model
from training.recipes import Recipe

STOP = True


@dataclass(frozen=True)
class AccuracyPoint:
    """Train and test accuracy after ``iteration`` steps."""

    iteration: int
    train: float
    test: float


@dataclass(frozen=True)
class Step:
    """What the callback sees after each iteration."""

    iteration: int
    total: int
    loss: float
    elapsed: float
    #: Set on the iterations where accuracy was recorded, else ``None``.
    accuracy: AccuracyPoint | None = None


StepCallback = Callable[[Step], bool | None]


def relay(
    on_step: StepCallback | None, offset: int, elapsed: float, total: int, keep_accuracy: bool
) -> StepCallback:
    """``on_step`` for one fit of several run one after another: its steps numbered after
    ``offset`` out of ``total``, its time after ``elapsed``, its accuracy points shifted (or
    dropped, ``keep_accuracy=False``); ``on_step``'s ``STOP`` is passed back."""

    def shifted(step: Step) -> bool | None:
        point = step.accuracy
        if point is not None:
            point = AccuracyPoint(point.iteration + offset, point.train, point.test)
        point = point if keep_accuracy else None
        moved = Step(step.iteration + offset, total, step.loss, step.elapsed + elapsed, point)
        return None if on_step is None else on_step(moved)

    return shifted


@dataclass
class FitResult:
    """The curves and final figures of one fit."""

    loss_curve: list[float] = field(default_factory=list)
    accuracy: list[AccuracyPoint] = field(default_factory=list)
    iterations: int = 0
    total_iterations: int = 0
    fit_seconds: float = 0.0
    cancelled: bool = False

    @property
    def final_loss(self) -> float:
        return self.loss_curve[-1] if self.loss_curve else math.nan

    @property
    def train_accuracy(self) -> float:
        return self.accuracy[-1].train if self.accuracy else math.nan

    @property
    def test_accuracy(self) -> float:
        return self.accuracy[-1].test if self.accuracy else math.nan


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of rows whose argmax logit is the label (model in eval mode, no grad)."""
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        correct = (model(x).argmax(dim=1) == y).sum().item()
    model.train(was_training)
    return float(correct) / len(y)


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """The optimizer a recipe names."""
    params = model.parameters()
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
        )
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}; expected sgd, adam or adamw")


def shift_images(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift each 8x8 image by -1, 0 or +1 pixel in each direction, filling with zeros."""
    n = x.shape[0]
    images = x.view(n, 8, 8)
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1))
    dy = torch.randint(0, 3, (n,), generator=generator)
    dx = torch.randint(0, 3, (n,), generator=generator)
    rows = (dy.view(n, 1) + torch.arange(8).view(1, 8)).view(n, 8, 1).expand(n, 8, 8)
    cols = (dx.view(n, 1) + torch.arange(8).view(1, 8)).view(n, 1, 8).expand(n, 8, 8)
    batch = torch.arange(n).view(n, 1, 1).expand(n, 8, 8)
    return padded[batch, rows, cols].reshape(n, 64)


def rotate_images(x: torch.Tensor, degrees: float, generator: torch.Generator) -> torch.Tensor:
    """Rotate each 8x8 image about its centre by an angle drawn uniformly in
    [-``degrees``, ``degrees``] (bilinear, zeros outside), one affine grid per image."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(degrees)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros(n)
    theta = torch.stack([cos, -sin, zero, sin, cos, zero], dim=1).view(n, 2, 3)
    images = x.view(n, 1, 8, 8)
    grid = nn.functional.affine_grid(theta, [n, 1, 8, 8], align_corners=False)
    out = nn.functional.grid_sample(images, grid, mode="bilinear", align_corners=False)
    return out.reshape(n, 64)


def make_scheduler(
    optimizer: torch.optim.Optimizer, recipe: Recipe
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The learning-rate schedule a recipe names, stepped once per iteration (or ``None``).

    Without warm-up the cosine schedule is torch's ``CosineAnnealingLR`` to zero; with
    ``warmup`` steps the rate rises linearly to the peak over those steps first, then (cosine)
    falls to zero over the remaining ones or (constant) stays.
    """
    total, warmup = recipe.iterations, min(max(recipe.warmup, 0), recipe.iterations)
    if warmup == 0:
        if recipe.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
        return None
    cosine = recipe.schedule == "cosine"

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if not cosine or total == warmup:
            return 1.0
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / (total - warmup)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class _WeightAverage:
    """An average of a model's parameters (``AveragedModel``): exponential with ``decay``,
    the equal (SWA) average of every update with ``decay=None``.

    Buffers (batch-norm statistics) are not averaged: ``sync`` copies the live model's into
    the averaged copy before it is evaluated, and ``copy_to`` moves the averaged parameters
    into the live model at the end of the fit.
    """

    def __init__(self, model: nn.Module, decay: float | None) -> None:
        if decay is None:
            self.averaged = AveragedModel(model)
        else:
            average_fn = get_ema_multi_avg_fn(decay)  # type: ignore[no-untyped-call]  # torch stub
            self.averaged = AveragedModel(model, multi_avg_fn=average_fn)

    def update(self, model: nn.Module) -> None:
        self.averaged.update_parameters(model)

    def sync(self, model: nn.Module) -> nn.Module:
        with torch.no_grad():
            for mine, theirs in zip(self.averaged.module.buffers(), model.buffers(), strict=True):
                mine.copy_(theirs)
        return self.averaged.module

    def copy_to(self, model: nn.Module) -> None:
        with torch.no_grad():
            for theirs, mine in zip(
                model.parameters(), self.averaged.module.parameters(), strict=True
            ):
                theirs.copy_(mine)


def fit(
    model: nn.Module,
    split: Split,
    recipe: Recipe,
    on_step: StepCallback | None = None,
) -> FitResult:
    """Fit ``model`` on ``split.x_train`` following ``recipe``.

    ``on_step`` is called after every iteration; returning ``STOP`` stops the fit after that
    iteration, and the result says ``cancelled=True``. Initialise the model under the same
    seed (``torch.manual_seed(recipe.seed)``) for a reproducible run: batches and shifts draw
    from their own generator seeded with ``recipe.seed``.

    With ``recipe.ema_decay`` > 0 an exponential moving average of the weights is kept (with
    ``recipe.swa_start`` > 0, the equal SWA average from that share of the steps on); the
    recorded accuracies are the averaged weights' once averaging has begun, and ``model``
    holds the averaged weights when ``fit`` returns (also after a cancel), so exporting it
    exports the averaged model.
    """
    if recipe.iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {recipe.iterations}")
    generator = torch.Generator().manual_seed(recipe.seed)
    optimizer = make_optimizer(model, recipe)
    scheduler = make_scheduler(optimizer, recipe)
    if recipe.ema_decay > 0 and recipe.swa_start > 0:
        raise ValueError("ema_decay and swa_start are exclusive: choose one weight average")
    average = None
    if recipe.ema_decay > 0:
        average = _WeightAverage(model, recipe.ema_decay)
    elif recipe.swa_start > 0:
        average = _WeightAverage(model, None)
    # EMA averages from the first step, SWA from this one on (the last 1 - swa_start share).
    average_from = math.floor(recipe.swa_start * recipe.iterations) + 1
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    x_all, y_all = split.x_train, split.y_train
    n = len(y_all)
    batch_size = recipe.batch_size if recipe.batch_size and recipe.batch_size < n else n
    order = torch.randperm(n, generator=generator)
    cursor = 0
    result = FitResult(total_iterations=recipe.iterations)
    start = time.perf_counter()
    model.train()
    for iteration in range(1, recipe.iterations + 1):
        if batch_size == n:
            x, y = x_all, y_all
        else:
            if cursor + batch_size > n:
                order = torch.randperm(n, generator=generator)
                cursor = 0
            index = order[cursor : cursor + batch_size]
            cursor += batch_size
            x, y = x_all[index], y_all[index]
        if recipe.augment_rotate > 0:
            x = rotate_images(x, recipe.augment_rotate, generator)
        if recipe.augment_shift:
            x = shift_images(x, generator)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if average is not None and iteration >= average_from:
            average.update(model)
        loss_value = float(loss.item())
        result.loss_curve.append(loss_value)
        result.iterations = iteration
        point = None
        if iteration % recipe.acc_step == 0 or iteration == recipe.iterations:
            scored = model
            if average is not None and iteration >= average_from:
                scored = average.sync(model)
            point = AccuracyPoint(
                iteration,
                accuracy(scored, split.x_train, split.y_train),
                accuracy(scored, split.x_test, split.y_test),
            )
            result.accuracy.append(point)
        elapsed = time.perf_counter() - start
        if on_step is not None and on_step(
            Step(iteration, recipe.iterations, loss_value, elapsed, point)
        ):
            result.cancelled = True
            break
    if average is not None and result.iterations >= average_from:
        average.copy_to(model)
    if result.cancelled and (
        not result.accuracy or result.accuracy[-1].iteration != result.iterations
    ):
        result.accuracy.append(
            AccuracyPoint(
                result.iterations,
                accuracy(model, split.x_train, split.y_train),
                accuracy(model, split.x_test, split.y_test),
            )
        )
    result.fit_seconds = time.perf_counter() - start
    model.eval()
    return result


def train(
    spec: ModelSpec, split: Split, recipe: Recipe, on_step: StepCallback | None = None
) -> tuple[nn.Module, FitResult]:
    """Seed torch with ``recipe.seed``, build the model ``spec`` describes and fit it."""
    torch.manual_seed(recipe.seed)
    model = build_model(spec)
    return model, fit(model, split, recipe, on_step)
