"""Calibration: expected calibration error, temperature scaling and the reliability diagram.

The temperature is fitted on the validation rows (``training.data.carve_validation``), never
on the lecture's test rows, and folded into the exported module: the logits are divided by
it, so the softmax the service computes gives the calibrated probabilities and the argmax
(the predicted digit) is unchanged. For the single-model families the division is folded
into the weights of the last affine layer, so it costs nothing at serving time.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.data import Split, Validation
from training.ensemble import Ensemble

#: Bins of the expected calibration error (equal-width confidence bins, as in Guo et al. 2017).
ECE_BINS = 15
#: The temperature is searched in this range (log-scale bounded minimisation of the NLL).
TEMPERATURE_RANGE = (0.05, 20.0)


def expected_calibration_error(
    probabilities: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS
) -> float:
    """ECE: the mean over equal-width confidence bins of |accuracy - confidence|, each bin
    weighted by its share of the rows. ``probabilities`` (N, C), ``labels`` (N,)."""
    confidence, predicted = probabilities.max(dim=1)
    correct = (predicted == labels).double()
    # Bin b holds confidences in (b/bins, (b+1)/bins]; a confidence of exactly 0 goes in bin 0.
    index = (torch.ceil(confidence.double() * bins).long() - 1).clamp(0, bins - 1)
    total = torch.zeros(bins, dtype=torch.float64)
    hits = total.index_add(0, index, correct)
    mass = total.index_add(0, index, confidence.double())
    return float((hits - mass).abs().sum() / len(labels))


def reliability_bins(
    probabilities: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS
) -> list[dict[str, float]]:
    """Per non-empty bin: its range, row count, mean confidence and accuracy (for plots)."""
    confidence, predicted = probabilities.max(dim=1)
    correct = (predicted == labels).double()
    index = (torch.ceil(confidence.double() * bins).long() - 1).clamp(0, bins - 1)
    out = []
    for b in range(bins):
        rows = index == b
        n = int(rows.sum())
        if n:
            out.append(
                {
                    "lo": b / bins,
                    "hi": (b + 1) / bins,
                    "count": n,
                    "confidence": float(confidence[rows].double().mean()),
                    "accuracy": float(correct[rows].mean()),
                }
            )
    return out


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature T minimising the cross-entropy of ``logits / T`` on these rows."""
    from scipy.optimize import minimize_scalar

    logits, labels = logits.double(), labels.long()

    def nll(log_t: float) -> float:
        return float(nn.functional.cross_entropy(logits / math.exp(log_t), labels))

    lo, hi = (math.log(t) for t in TEMPERATURE_RANGE)
    found = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    return math.exp(float(found.x))


def fold_temperature(model: nn.Module, temperature: float) -> nn.Module:
    """Divide ``model``'s logits by ``temperature`` by scaling its last affine layer in place.

    The last layer is the module's last ``nn.Linear`` (or the hand-made logistic's ``beta``
    and ``intercept``; an ``Ensemble`` scales its output instead). A probe checks that the
    output is the old logits divided by the temperature, so an architecture whose last op is
    not that layer fails loudly.
    """
    probe = torch.arange(4 * 64, dtype=torch.float32).reshape(4, 64) % 17
    model.eval()
    with torch.inference_mode():
        expected = model(probe) / temperature
    with torch.no_grad():
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if isinstance(model, Ensemble):  # its output is log(mean p): scale that, not a member
            model.inverse_temperature /= temperature
        elif linears:
            linears[-1].weight.div_(temperature)
            if linears[-1].bias is not None:
                linears[-1].bias.div_(temperature)
        else:
            for name in ("beta", "intercept"):
                getattr(model, name).div_(temperature)
    with torch.inference_mode():
        torch.testing.assert_close(model(probe), expected, rtol=1e-4, atol=1e-4)
    return model


@dataclass(frozen=True)
class CalibrationReport:
    """The temperature fitted on the validation rows and the figures before and after it."""

    temperature: float
    validation: dict[str, Any]
    #: ECE, NLL and accuracy of the validation and test rows, before and after scaling.
    figures: dict[str, float]
    #: Reliability bins per row set ("validation", "test") and stage ("before", "after").
    bins: dict[str, dict[str, list[dict[str, float]]]]

    def manifest_fields(self) -> dict[str, Any]:
        """The manifest's ``validation`` and ``calibration`` entries."""
        return {
            "validation": self.validation,
            "calibration": {"method": "temperature", "bins": ECE_BINS, **self.figures},
        }


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.inference_mode():
        out: torch.Tensor = model(x)
    return out.double()


def _figures(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    probs = torch.softmax(logits, dim=1)
    return {
        "ece": round(expected_calibration_error(probs, labels), 6),
        "nll": round(float(nn.functional.cross_entropy(logits, labels)), 6),
    }


def calibrate(
    model: nn.Module, validation: Validation, split: Split, *, fold: bool = True
) -> CalibrationReport:
    """Fit the temperature of ``model`` on the validation rows, fold it into the model (in
    place, unless ``fold=False``) and measure ECE/NLL before and after on validation and test.
    """
    val_logits = _logits(model, validation.x)
    test_logits = _logits(model, split.x_test)
    temperature = fit_temperature(val_logits, validation.y)
    figures: dict[str, float] = {"temperature": round(temperature, 6)}
    bins: dict[str, dict[str, list[dict[str, float]]]] = {}
    for rows, logits, labels in (
        ("validation", val_logits, validation.y),
        ("test", test_logits, split.y_test),
    ):
        bins[rows] = {}
        for stage, scaled in (("before", logits), ("after", logits / temperature)):
            for key, value in _figures(scaled, labels).items():
                figures[f"{key}_{rows}_{stage}"] = value
            bins[rows][stage] = reliability_bins(torch.softmax(scaled, dim=1), labels)
    if fold:
        fold_temperature(model, temperature)
    accuracy = float((val_logits.argmax(dim=1) == validation.y).double().mean())
    record = {**validation.describe(), "accuracy": accuracy}
    return CalibrationReport(temperature, record, figures, bins)


def plot_reliability(report: CalibrationReport, path: Path | io.BytesIO, title: str) -> None:
    """The reliability diagram: accuracy against confidence per bin, before and after the
    temperature, on the validation rows (where it was fitted) and the test rows (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.8), layout="constrained")
    for ax, rows in zip(fig.subplots(1, 2), ("validation", "test"), strict=True):
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="perfect")
        for stage, marker in (("before", "o"), ("after", "s")):
            points = report.bins[rows][stage]
            ece = report.figures[f"ece_{rows}_{stage}"]
            ax.plot(
                [p["confidence"] for p in points],
                [p["accuracy"] for p in points],
                marker=marker,
                linewidth=1,
                label=f"{stage} (ECE {ece:.4f})",
            )
        ax.set(
            title=f"{rows} rows",
            xlabel="confidence",
            ylabel="accuracy",
            xlim=(0, 1.02),
            ylim=(0, 1.02),
        )
        ax.legend(loc="upper left", fontsize="small")
    fig.suptitle(f"{title}: T = {report.temperature:.3f}")
    fig.savefig(path, format="png", dpi=100)
