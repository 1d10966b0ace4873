"""What a recipe makes for the fit loop (``training.fit``): the optimizer, the learning-rate
schedule, and the weight average (EMA or SWA)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from training.recipes import Recipe


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


class WeightAverage:
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
