"""The ``ensemble`` family: the mean of the probabilities of several fitted members.

An ensemble is fitted member by member (each with its family's recipe and its own seed, on
the same rows), then exported as ONE TorchScript module, ``Ensemble``, whose output is the
log of the members' mean probability (times the inverse temperature): the softmax the
service applies to it gives the mean probability back (calibrated when the temperature is
not 1), and the argmax is the ensemble's vote.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from training.data import Split
from training.ensemble_spec import (
    EnsembleSpec,
    Member,
)
from training.fit import AccuracyPoint, FitResult, StepCallback, accuracy, relay, train

#: Smallest probability kept before the log (float32's tiniest normal number): a class every
#: member rules out gets a very negative but finite logit, not ``-inf``.
_TINY = float(torch.finfo(torch.float32).tiny)


class Ensemble(nn.Module):
    """Mean of the members' softmax probabilities, returned as logits: ``log(mean p) / T``."""

    def __init__(self, members: Sequence[nn.Module], temperature: float = 1.0) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.inverse_temperature = 1.0 / float(temperature)
        self.tiny = _TINY  # an attribute: TorchScript cannot read a module-level float

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probabilities = []
        for member in self.members:
            probabilities.append(torch.softmax(member(x), dim=1))
        mean = torch.stack(probabilities).mean(dim=0)  # (N, 10)
        return torch.log(mean.clamp_min(self.tiny)) * self.inverse_temperature


def train_ensemble(
    spec: EnsembleSpec, split: Split, on_step: StepCallback | None = None
) -> tuple[Ensemble, FitResult, list[dict[str, Any]]]:
    """Fit every member in turn; returns the ensemble, one ``FitResult`` over all members'
    steps (the iteration count runs on across members; its last accuracy point is the
    ensemble's) and the members' manifest entries (with each one's own accuracies).

    ``on_step`` sees the steps numbered over the whole ensemble; ``STOP`` stops the member
    being fitted and skips the rest (the result says ``cancelled``).
    """
    total = spec.iterations
    result = FitResult(total_iterations=total)
    fitted: list[nn.Module] = []
    records: list[dict[str, Any]] = []
    offset, elapsed = 0, 0.0
    for member in spec.members:
        shifted = relay(on_step, offset, elapsed, total, keep_accuracy=True)
        model, member_result = train(member.spec, split, member.recipe, shifted)
        fitted.append(model)
        result.loss_curve += member_result.loss_curve
        result.accuracy += [
            AccuracyPoint(p.iteration + offset, p.train, p.test) for p in member_result.accuracy
        ]
        offset += member_result.iterations
        elapsed += member_result.fit_seconds
        records.append(_member_entry(member, member_result))
        if member_result.cancelled:
            result.cancelled = True
            break
    ensemble = Ensemble(fitted)
    result.iterations, result.fit_seconds = offset, elapsed
    result.accuracy.append(
        AccuracyPoint(
            offset,
            accuracy(ensemble, split.x_train, split.y_train),
            accuracy(ensemble, split.x_test, split.y_test),
        )
    )
    ensemble.eval()
    return ensemble, result, records


def _member_entry(member: Member, result: FitResult) -> dict[str, Any]:
    """A member's manifest entry: its family, seed, architecture and recipe, and its own
    accuracies."""
    return {
        **member.to_dict(),
        "train_accuracy": result.train_accuracy,
        "test_accuracy": result.test_accuracy,
    }
