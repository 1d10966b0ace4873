"""Calibration: ECE on hand-computable cases, the temperature fit, folding it into the module."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from training.calibration import (
    calibrate,
    expected_calibration_error,
    fit_temperature,
    fold_temperature,
    plot_reliability,
)
from training.data import Split, carve_validation
from training.fit import FitResult
from training.models import FAMILIES, Family, HandLogistic
from training.recipes import Preset

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


def test_calibrate_lowers_validation_nll_and_keeps_the_predictions(
    fitted: Fitted, split: Split
) -> None:
    """The temperature minimises the validation NLL (so it is no worse than T = 1), is folded
    into the model, leaves every argmax as it was and records the carve in ``validation``."""
    fitting, validation = carve_validation(split)
    model = copy.deepcopy(fitted["cnn"][1]).eval()
    with torch.inference_mode():
        before = model(split.x_test)
    report = calibrate(model, validation, fitting)
    figures = report.figures
    assert figures["nll_validation_after"] <= figures["nll_validation_before"] + 1e-9
    with torch.inference_mode():
        after = model(split.x_test)
    torch.testing.assert_close(after, before / report.temperature, rtol=1e-4, atol=1e-4)
    assert torch.equal(after.argmax(dim=1), before.argmax(dim=1))
    fields = report.manifest_fields()
    assert fields["validation"]["n_validation"] == len(validation.y)
    assert fields["calibration"]["temperature"] == pytest.approx(report.temperature, rel=1e-5)
    png = io.BytesIO()
    plot_reliability(report, png, "cnn")
    assert png.getvalue().startswith(b"\x89PNG")
