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

from training.augment import rotate_images, shift_images
from training.data import Split
from training.models import build_model
from training.optim import WeightAverage, make_optimizer, make_scheduler
from training.recipes import Recipe
from training.specs import ModelSpec

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
    loop = _Loop(model, split, recipe)
    result = FitResult(total_iterations=recipe.iterations)
    start = time.perf_counter()
    model.train()
    for iteration in range(1, recipe.iterations + 1):
        loss = loop.step(iteration)
        point = loop.record(result, iteration, loss)
        elapsed = time.perf_counter() - start
        if on_step is not None and on_step(
            Step(iteration, recipe.iterations, loss, elapsed, point)
        ):
            result.cancelled = True
            break
    loop.finish(result)
    result.fit_seconds = time.perf_counter() - start
    model.eval()
    return result


class _Loop:
    """What one fit runs: the parts its recipe makes (generator, optimizer, schedule, weight
    average, loss, batches), each step, and the accuracy it records."""

    def __init__(self, model: nn.Module, split: Split, recipe: Recipe) -> None:
        if recipe.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {recipe.iterations}")
        self.model, self.split, self.recipe = model, split, recipe
        self.generator = torch.Generator().manual_seed(recipe.seed)
        self.optimizer = make_optimizer(model, recipe)
        self.scheduler = make_scheduler(self.optimizer, recipe)
        self.average = _weight_average(model, recipe)
        # EMA averages from the first step, SWA from this one on (the last 1 - swa_start share).
        self.average_from = math.floor(recipe.swa_start * recipe.iterations) + 1
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
        self.batches = _Batches(split, recipe.batch_size, self.generator)

    def step(self, iteration: int) -> float:
        """One optimisation step on the next batch (augmented as the recipe says), the weight
        average updated once it has begun; the step's loss."""
        x, y = self.batches.next()
        x = _augment(x, self.recipe, self.generator)
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        if self.average is not None and iteration >= self.average_from:
            self.average.update(self.model)
        return float(loss.item())

    def record(self, result: FitResult, iteration: int, loss: float) -> AccuracyPoint | None:
        """Add the step's loss to ``result``, and its accuracy every ``acc_step`` iterations
        and at the last (the averaged weights' once averaging has begun)."""
        result.loss_curve.append(loss)
        result.iterations = iteration
        if iteration % self.recipe.acc_step and iteration != self.recipe.iterations:
            return None
        scored = self.model
        if self.average is not None and iteration >= self.average_from:
            scored = self.average.sync(self.model)
        point = _accuracy_point(scored, self.split, iteration)
        result.accuracy.append(point)
        return point

    def finish(self, result: FitResult) -> None:
        """Leave the averaged weights in the model once averaging has begun, and give a
        cancelled fit an accuracy point where it stopped."""
        if self.average is not None and result.iterations >= self.average_from:
            self.average.copy_to(self.model)
        if result.cancelled and (
            not result.accuracy or result.accuracy[-1].iteration != result.iterations
        ):
            result.accuracy.append(_accuracy_point(self.model, self.split, result.iterations))


def _weight_average(model: nn.Module, recipe: Recipe) -> WeightAverage | None:
    """The weight average the recipe asks for: EMA (``ema_decay``), SWA (``swa_start``) or
    none; both at once is an error."""
    if recipe.ema_decay > 0 and recipe.swa_start > 0:
        raise ValueError("ema_decay and swa_start are exclusive: choose one weight average")
    if recipe.ema_decay > 0:
        return WeightAverage(model, recipe.ema_decay)
    if recipe.swa_start > 0:
        return WeightAverage(model, None)
    return None


class _Batches:
    """The minibatches of one fit: every training row when the batch covers them all, else
    successive slices of a permutation (from ``generator``), drawn again when it runs out."""

    def __init__(self, split: Split, batch_size: int | None, generator: torch.Generator) -> None:
        self.x, self.y = split.x_train, split.y_train
        self.n = len(self.y)
        self.size = batch_size if batch_size and batch_size < self.n else self.n
        self.generator = generator
        self.order = torch.randperm(self.n, generator=generator)
        self.cursor = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.size == self.n:
            return self.x, self.y
        if self.cursor + self.size > self.n:
            self.order = torch.randperm(self.n, generator=self.generator)
            self.cursor = 0
        index = self.order[self.cursor : self.cursor + self.size]
        self.cursor += self.size
        return self.x[index], self.y[index]


def _augment(x: torch.Tensor, recipe: Recipe, generator: torch.Generator) -> torch.Tensor:
    """The batch as the recipe augments it: rotated, then shifted."""
    if recipe.augment_rotate > 0:
        x = rotate_images(x, recipe.augment_rotate, generator)
    if recipe.augment_shift:
        x = shift_images(x, generator)
    return x


def _accuracy_point(model: nn.Module, split: Split, iteration: int) -> AccuracyPoint:
    """Train and test accuracy of ``model`` after ``iteration`` steps."""
    return AccuracyPoint(
        iteration,
        accuracy(model, split.x_train, split.y_train),
        accuracy(model, split.x_test, split.y_test),
    )


def train(
    spec: ModelSpec, split: Split, recipe: Recipe, on_step: StepCallback | None = None
) -> tuple[nn.Module, FitResult]:
    """Seed torch with ``recipe.seed``, build the model ``spec`` describes and fit it."""
    torch.manual_seed(recipe.seed)
    model = build_model(spec)
    return model, fit(model, split, recipe, on_step)
