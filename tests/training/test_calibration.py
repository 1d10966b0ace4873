"""Calibration: ECE on hand-computable cases, the temperature fit, folding it into the module."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from training.calibration import (
    at_bound,
    calibrate,
    expected_calibration_error,
    figures,
    fit_temperature,
    fold_temperature,
    plot_reliability,
)
from training.data import Split, out_of_fold_record
from training.fit import FitResult
from training.models import HandLogistic
from training.recipes import Preset
from training.specs import FAMILIES, Family

Fitted = dict[Family, tuple[Preset, nn.Module, FitResult]]


def _confident(confidence: float, labels: list[int], predicted: list[int]) -> torch.Tensor:
    """Rows predicting ``predicted`` with probability ``confidence``, the rest spread evenly."""
    rest = (1 - confidence) / 9
    probs = torch.full((len(labels), 10), rest, dtype=torch.float64)
    probs[torch.arange(len(labels)), torch.tensor(predicted)] = confidence
    return probs


def test_ece_is_the_gap_between_accuracy_and_confidence_of_one_bin() -> None:
    """Ten rows at confidence 0.9 of which 8 are right: ECE = |0.8 - 0.9| = 0.1."""
    labels = [3] * 10
    probs = _confident(0.9, labels, [3] * 8 + [4] * 2)
    ece = expected_calibration_error(probs, torch.tensor(labels))
    assert ece == pytest.approx(0.1)


def test_ece_weights_each_bin_by_its_share_of_rows() -> None:
    """Four right rows at 0.95 (gap 0.05) and four at 0.6 with one right (gap 0.35):
    ECE = 0.5 * 0.05 + 0.5 * 0.35 = 0.2."""
    labels = [1] * 8
    probs = torch.cat(
        [_confident(0.95, labels[:4], [1] * 4), _confident(0.6, labels[4:], [1, 2, 2, 2])]
    )
    assert expected_calibration_error(probs, torch.tensor(labels)) == pytest.approx(0.2)


def test_ece_of_certain_and_right_rows_is_zero() -> None:
    """Confidence 1.0 on rows that are all right is perfect calibration."""
    labels = torch.arange(10)
    assert expected_calibration_error(torch.eye(10), labels) == pytest.approx(0.0)


def test_fit_temperature_recovers_the_temperature_the_labels_were_drawn_with() -> None:
    """Labels drawn from softmax(z / 2) make T = 2 the NLL minimum (within sampling noise)."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(20_000, 10, generator=generator) * 4
    labels = torch.multinomial(torch.softmax(logits / 2, dim=1), 1, generator=generator)
    assert fit_temperature(logits, labels.squeeze(1)) == pytest.approx(2.0, rel=0.05)


@pytest.mark.parametrize("family", FAMILIES)
def test_folded_temperature_gives_the_scaled_probabilities(
    fitted: Fitted, split: Split, family: Family
) -> None:
    """Folding T into the last layer makes the module's softmax softmax(logits / T)."""
    model = copy.deepcopy(fitted[family][1]).eval()
    with torch.inference_mode():
        expected = torch.softmax(model(split.x_test) / 1.7, dim=1)
    folded = torch.jit.script(fold_temperature(model, 1.7))
    with torch.inference_mode():
        torch.testing.assert_close(torch.softmax(folded(split.x_test), dim=1), expected)


def test_fold_temperature_scales_the_hand_made_logistic() -> None:
    """The lecture's hand-made logistic has no nn.Linear: its beta and intercept are scaled."""
    torch.manual_seed(0)
    model = HandLogistic(1 / 16)
    x = torch.rand(5, 64) * 16
    with torch.inference_mode():
        expected = model(x) / 0.5
    with torch.inference_mode():
        torch.testing.assert_close(fold_temperature(model, 0.5)(x), expected)


def test_figures_on_hand_computed_rows() -> None:
    """Brier score and the mean confidence of right and wrong answers, computed by hand: two
    right rows at 0.9 and one wrong row at 0.6."""
    probs = _confident(0.9, [0, 1, 2], [0, 1, 2])
    probs[2] = _confident(0.6, [2], [5])[0]
    found = figures(probs.log(), torch.tensor([0, 1, 2]))
    assert found["conf_right"] == pytest.approx(0.9)
    assert found["conf_wrong"] == pytest.approx(0.6)
    right = (0.1**2 + 9 * (0.1 / 9) ** 2) * 2
    wrong = 0.6**2 + (1 - 0.4 / 9) ** 2 + 8 * (0.4 / 9) ** 2
    assert found["brier"] == pytest.approx((right + wrong) / 3, abs=1e-6)


def test_calibrate_fits_out_of_fold_logits_and_keeps_the_predictions(
    fitted: Fitted, split: Split
) -> None:
    """The temperature minimises the NLL of the out-of-fold logits it is given (no worse than
    T = 1 there), is folded into the model, leaves every argmax as it was and records the
    out-of-fold accuracy as the held-out figure."""
    model = copy.deepcopy(fitted["cnn"][1]).eval()
    with torch.inference_mode():
        before = model(split.x_test)
        out_of_fold = 10.0 * model(split.x_train)  # stand-ins (the tiny fit is underconfident)
    record = out_of_fold_record(split)
    unscaled = calibrate(model, out_of_fold, record, split, fold=False).temperature
    report = calibrate(model, 3.0 * out_of_fold, record, split)
    found = report.figures
    assert found["nll_out_of_fold_after"] <= found["nll_out_of_fold_before"] + 1e-9
    assert report.temperature == pytest.approx(3.0 * unscaled, rel=1e-3)  # fitted on those
    with torch.inference_mode():
        after = model(split.x_test)
    torch.testing.assert_close(after, before / report.temperature, rtol=1e-4, atol=1e-4)
    assert torch.equal(after.argmax(dim=1), before.argmax(dim=1))
    fields = report.manifest_fields()
    accuracy = float((out_of_fold.argmax(dim=1) == split.y_train).double().mean())
    assert fields["validation"] == {**record, "accuracy": accuracy}
    assert fields["calibration"]["temperature"] == pytest.approx(report.temperature, rel=1e-5)
    assert fields["calibration"]["temperature_at_bound"] is False
    png = io.BytesIO()
    plot_reliability(report, png, "cnn")
    assert png.getvalue().startswith(b"\x89PNG")


def test_a_temperature_at_its_bound_is_reported() -> None:
    """Rows a model never misses push T to the lower bound: ``at_bound`` says so. (Margins
    of 1: with much larger ones the loss is flat to float64 well above the bound.)"""
    logits = torch.eye(10, dtype=torch.float64).repeat(5, 1)
    temperature = fit_temperature(logits, torch.arange(10).repeat(5))
    assert at_bound(temperature)
    assert not at_bound(1.0)
