"""Cross-validation uses the training rows only and weighs accuracy against serving cost."""

from __future__ import annotations

import torch

from training.cv import CVScore, folds, macs_per_row, pick
from training.data import Split
from training.specs import ModelSpec


def test_folds_partition_the_training_rows_and_never_touch_test_rows(split: Split) -> None:
    """The held-out parts of 5 folds together are exactly the 1,437 training rows."""
    parts = folds(split, 5)
    held_out = torch.cat([f.x_test for f in parts])
    assert sum(len(f.y_test) for f in parts) == 1437
    assert all(len(f.y_train) + len(f.y_test) == 1437 for f in parts)
    rows = {tuple(r.tolist()) for r in held_out}
    assert rows == {tuple(r.tolist()) for r in split.x_train}


def test_wider_cnn_costs_about_four_times_the_default_per_row() -> None:
    """Channels (32, 64) need about 4x the multiply-adds of (16, 32)."""
    ratio = macs_per_row(ModelSpec("cnn", channels=(32, 64))) / macs_per_row(
        ModelSpec("cnn", channels=(16, 32))
    )
    assert 3.5 < ratio < 4.5
    assert macs_per_row(ModelSpec("logistic")) == 640


def _score(name: str, accuracies: list[float], macs: int) -> CVScore:
    errors = round(sum(287 * (1 - a) for a in accuracies))
    return CVScore(name, accuracies, errors, 1.0, macs, 0.1)


def test_pick_prefers_the_cheaper_candidate_within_one_standard_error() -> None:
    """A 4x cheaper model whose CV accuracy is within one SE of the best one is picked."""
    big = _score("big", [1.0, 0.99, 1.0, 0.98, 1.0], 1_200_000)
    small = _score("small", [0.99, 0.99, 1.0, 0.98, 0.99], 300_000)
    assert pick([big, small]) is small


def test_pick_keeps_the_best_candidate_when_the_cheaper_one_is_clearly_worse() -> None:
    """A cheaper model more than one SE below the best one is not picked."""
    big = _score("big", [1.0, 0.99, 1.0, 0.99, 1.0], 1_200_000)
    small = _score("small", [0.95, 0.96, 0.95, 0.96, 0.95], 300_000)
    assert pick([big, small]) is big


def test_pick_keeps_the_incumbent_default_on_a_tie() -> None:
    """Equal cost and equal errors keep the first-listed candidate, the current default."""
    incumbent = _score("default", [0.99, 1.0, 0.98, 1.0, 0.99], 18_944)
    challenger = _score("other", [1.0, 0.99, 0.99, 0.99, 0.99], 18_944)
    assert pick([incumbent, challenger]) is incumbent


def test_macs_count_the_cnn_hidden_layer_and_batch_norm() -> None:
    """A hidden FC layer and batch norm add their multiply-adds to the (16, 32) CNN's."""
    base = macs_per_row(ModelSpec("cnn", channels=(16, 32)))
    assert macs_per_row(ModelSpec("cnn", channels=(16, 32), fc_hidden=64)) == (
        base - 512 * 10 + 512 * 64 + 64 * 10
    )
    assert macs_per_row(ModelSpec("cnn", channels=(16, 32), batch_norm=True)) == base + 64 * 48


def test_cv_with_two_seeds_fits_every_fold_twice(split: Split) -> None:
    """--seeds 2 gives folds x 2 accuracies and per-seed error counts that sum to the total."""
    from training.cv import cross_validate, format_scores
    from training.recipes import DEFAULT, Preset

    chosen = DEFAULT["logistic"]
    short = Preset(chosen.spec, chosen.recipe.with_overrides(iterations=5))
    parts = folds(split, 3)
    score = cross_validate("short", short, parts, seeds=2)
    assert len(score.fold_accuracies) == 6
    assert len(score.seed_errors) == 2
    assert sum(score.seed_errors) == score.errors
    assert score.worst == min(score.fold_accuracies)
    table = format_scores("logistic", [score], 1437, seeds=2)
    assert f"/{1437 * 2}" in table
    assert "worst fold" in table
