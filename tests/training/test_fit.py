"""The fit loop: falling loss, cancellation, determinism, accuracy records."""

from __future__ import annotations

from dataclasses import replace

import torch

from training.data import Split
from training.fit import STOP, Step, train
from training.recipes import DEFAULT, LECTURE


def test_loss_curve_falls_over_a_short_fit(split: Split) -> None:
    """Fifty steps of the lecture's logistic recipe lower the loss well below its start."""
    chosen = LECTURE["logistic"]
    _, result = train(chosen.spec, split, replace(chosen.recipe, iterations=50))
    assert len(result.loss_curve) == 50
    assert sum(result.loss_curve[-5:]) / 5 < 0.5 * result.loss_curve[0]


def test_fit_records_accuracy_every_acc_step_and_at_the_end(split: Split) -> None:
    """Accuracy is recorded at iterations 10, 20, ... and after the last one."""
    chosen = LECTURE["logistic"]
    recipe = replace(chosen.recipe, iterations=25, acc_step=10)
    _, result = train(chosen.spec, split, recipe)
    assert [p.iteration for p in result.accuracy] == [10, 20, 25]
    assert 0.0 <= result.test_accuracy <= 1.0


def test_callback_returning_stop_cancels_the_fit_early(split: Split) -> None:
    """A callback returning STOP at step 7 of 100 ends the fit there with cancelled=True."""
    chosen = DEFAULT["fnn"]
    seen: list[Step] = []

    def on_step(step: Step) -> bool:
        seen.append(step)
        return STOP if step.iteration == 7 else False

    _, result = train(chosen.spec, split, replace(chosen.recipe, iterations=100), on_step)
    assert result.cancelled is True
    assert result.iterations == 7 < result.total_iterations == 100
    assert len(result.loss_curve) == 7
    assert [s.iteration for s in seen] == list(range(1, 8))
    assert result.accuracy[-1].iteration == 7


def test_same_seed_gives_the_same_curve_and_weights(split: Split) -> None:
    """Two fits with the same seed (mini-batches, dropout, shifts) give identical results."""
    chosen = DEFAULT["cnn"]
    recipe = replace(chosen.recipe, iterations=15, seed=3)
    model_a, a = train(chosen.spec, split, recipe)
    model_b, b = train(chosen.spec, split, recipe)
    assert a.loss_curve == b.loss_curve
    for pa, pb in zip(model_a.parameters(), model_b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)


def test_another_seed_gives_another_curve(split: Split) -> None:
    """A different seed changes the initial weights, hence the curve."""
    chosen = DEFAULT["fnn"]
    _, a = train(chosen.spec, split, replace(chosen.recipe, iterations=5, seed=0))
    _, b = train(chosen.spec, split, replace(chosen.recipe, iterations=5, seed=1))
    assert a.loss_curve != b.loss_curve
