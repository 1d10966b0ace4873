"""Calibration: expected calibration error, temperature scaling and the reliability diagram.

The temperature is fitted on out-of-fold logits of every training row (k-fold over the
1,437 training rows, each fold's model fitted with the same recipe on the other folds:
``training.pipeline.fit_calibrated``), never on the lecture's test rows, and folded into the
exported module (the fit on every training row): the logits are divided by
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

from training.data import Split
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
    """The temperature T minimising the cross-entropy of ``logits / T`` on these rows.
    It may land at a bound of ``TEMPERATURE_RANGE`` when the rows cannot fix it (no wrong
    answer among them, say): ``at_bound`` tells, and the manifest records it."""
    from scipy.optimize import minimize_scalar

    logits, labels = logits.double(), labels.long()

    def nll(log_t: float) -> float:
        return float(nn.functional.cross_entropy(logits / math.exp(log_t), labels))

    lo, hi = (math.log(t) for t in TEMPERATURE_RANGE)
    found = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    return math.exp(float(found.x))


def at_bound(temperature: float) -> bool:
    """Whether a fitted temperature sits (within 1%) at a bound of its search range."""
    return not TEMPERATURE_RANGE[0] * 1.01 < temperature < TEMPERATURE_RANGE[1] / 1.01


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
    """The temperature fitted on out-of-fold logits and the figures before and after it."""

    temperature: float
    #: The held-out record the promotion gate reads (``training.data.OutOfFold.describe``).
    validation: dict[str, Any]
    #: ECE, NLL, Brier and mean confidence of right/wrong answers on the out-of-fold and test
    #: rows, before and after scaling (``<figure>_<rows>_<stage>``).
    figures: dict[str, float]
    #: Reliability bins per row set ("out_of_fold", "test") and stage ("before", "after").
    bins: dict[str, dict[str, list[dict[str, float]]]]

    def manifest_fields(self) -> dict[str, Any]:
        """The manifest's ``validation`` and ``calibration`` entries."""
        return {
            "validation": self.validation,
            "calibration": {
                "method": "temperature",
                "bins": ECE_BINS,
                **self.figures,
                # the console's reliability diagram of the test rows, before and after
                "reliability_test": self.bins["test"],
            },
        }


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.inference_mode():
        out: torch.Tensor = model(x)
    return out.double()


def figures(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """ECE (15 bins), NLL, Brier score (sum over classes, mean over rows) and the mean
    confidence of the right and of the wrong answers (NaN when there is none)."""
    probs = torch.softmax(logits.double(), dim=1)
    confidence, predicted = probs.max(dim=1)
    right = predicted == labels
    onehot = nn.functional.one_hot(labels, probs.shape[1]).double()
    return {
        "ece": round(expected_calibration_error(probs, labels), 6),
        "nll": round(float(nn.functional.cross_entropy(logits.double(), labels)), 6),
        "brier": round(float(((probs - onehot) ** 2).sum(dim=1).mean()), 6),
        "conf_right": round(float(confidence[right].mean()), 6) if right.any() else math.nan,
        "conf_wrong": round(float(confidence[~right].mean()), 6) if (~right).any() else math.nan,
    }


def calibrate(
    model: nn.Module,
    out_of_fold: torch.Tensor,
    held_out: dict[str, Any],
    split: Split,
    *,
    fold: bool = True,
) -> CalibrationReport:
    """Fit the temperature on ``out_of_fold`` logits (N_train, 10: each training row scored by
    a model fitted without it), fold it into ``model`` (the fit on every training row; in
    place unless ``fold=False``) and measure the figures before and after on those rows and
    on the test rows. ``held_out`` describes the folds (the manifest's ``validation``)."""
    test_logits = _logits(model, split.x_test)
    out_of_fold = out_of_fold.double()
    temperature = fit_temperature(out_of_fold, split.y_train)
    found: dict[str, float] = {"temperature": round(temperature, 6)}
    found["temperature_at_bound"] = at_bound(temperature)
    bins: dict[str, dict[str, list[dict[str, float]]]] = {}
    for rows, logits, labels in (
        ("out_of_fold", out_of_fold, split.y_train),
        ("test", test_logits, split.y_test),
    ):
        bins[rows] = {}
        for stage, scaled in (("before", logits), ("after", logits / temperature)):
            for key, value in figures(scaled, labels).items():
                found[f"{key}_{rows}_{stage}"] = value
            bins[rows][stage] = reliability_bins(torch.softmax(scaled, dim=1), labels)
    if fold:
        fold_temperature(model, temperature)
    accuracy = float((out_of_fold.argmax(dim=1) == split.y_train).double().mean())
    return CalibrationReport(temperature, {**held_out, "accuracy": accuracy}, found, bins)


def plot_reliability(report: CalibrationReport, path: Path | io.BytesIO, title: str) -> None:
    """The reliability diagram: accuracy against confidence per bin, before and after the
    temperature, on the out-of-fold training rows (where it was fitted) and the test rows (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.8), layout="constrained")
    for ax, rows in zip(fig.subplots(1, 2), ("out_of_fold", "test"), strict=True):
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
            title=f"{rows.replace('_', '-')} rows",
            xlabel="confidence",
            ylabel="accuracy",
            xlim=(0, 1.02),
            ylim=(0, 1.02),
        )
        ax.legend(loc="upper left", fontsize="small")
    fig.suptitle(f"{title}: T = {report.temperature:.3f}")
    fig.savefig(path, format="png", dpi=100)
