"""The outlier score: its threshold from held-out training rows, the module that carries it."""

from __future__ import annotations

import pytest
import torch

from training.data import Split
from training.outlier import OutlierScored, fit_outlier, made_inputs, score


def test_threshold_flags_about_one_percent_of_held_out_digits(split: Split) -> None:
    """The threshold is the 99th percentile of held-out scores: about 1% of real digits that
    the statistics never saw are flagged, and at most 2% of the test rows."""
    stats = fit_outlier(split)
    assert 0.005 <= stats.held_out_flag_rate <= 0.015
    test_scores = score(split.x_test.double(), stats.whiten.double(), stats.centres.double())
    assert float((test_scores > stats.threshold).double().mean()) <= 0.02


def test_module_scores_as_the_statistics_do_in_one_call(split: Split) -> None:
    """``OutlierScored.forward_scored`` returns the model's logits unchanged and the score of
    the same rows; blank, saturated and noisy inputs score over the threshold."""
    stats = fit_outlier(split)
    model = torch.nn.Linear(64, 10)
    wrapped = torch.jit.script(OutlierScored(model, stats))
    made = made_inputs(split)
    x = torch.cat([split.x_test[:20], made["all zeros"], made["all 16s"], made["uniform noise"]])
    with torch.inference_mode():
        logits, scores = wrapped.forward_scored(x)
        torch.testing.assert_close(logits, model(x))
    expected = score(x.double(), stats.whiten.double(), stats.centres.double())
    torch.testing.assert_close(scores.double(), expected, rtol=1e-3, atol=1e-2)
    assert bool((scores[20:] > wrapped.outlier_threshold).all())
    assert wrapped.outlier_threshold == pytest.approx(stats.threshold)
