"""The calibration and outlier tables of ``python -m training.report`` and its reliability
diagrams (one panel per calibrated row, seed 0, test rows before and after the temperature)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.data import Split
from training.outlier import fit_outlier, made_inputs, score


def _mean(values: Sequence[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return statistics.fmean(kept) if kept else math.nan


def format_calibration(rows: Sequence[tuple[str, list[dict[str, Any]]]]) -> str:
    """Per calibrated row (its label, each seed's calibration figures): T (mean, range, at a
    bound), then test-row ECE/NLL/Brier and the mean confidence of right and wrong answers,
    each as the mean over seeds before -> after the temperature."""
    lines = [
        "| model | seeds | T mean (range) | at bound | test ECE | test NLL | test Brier "
        "| conf. right | conf. wrong |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, seeds in rows:
        temps = [c["temperature"] for c in seeds]
        cells = []
        for key in ("ece", "nll", "brier", "conf_right", "conf_wrong"):
            before = _mean([c[f"{key}_test_before"] for c in seeds])
            after = _mean([c[f"{key}_test_after"] for c in seeds])
            cells.append(f"{before:.4f} → {after:.4f}")
        bound = sum(bool(c.get("temperature_at_bound")) for c in seeds)
        lines.append(
            f"| {label} | {len(seeds)} | {statistics.fmean(temps):.3f} "
            f"({min(temps):.3f}-{max(temps):.3f}) | {bound} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def format_outliers(split: Split) -> str:
    """Flag rate of the outlier score (the same in every family: it reads the pixels) on the
    test rows and on each kind of made input, with the threshold fitted on the training rows."""
    stats = fit_outlier(split)
    sets = {"test rows (real digits)": split.x_test, **made_inputs(split)}
    lines = [
        f"outlier score: squared Mahalanobis distance to the nearest class mean, threshold "
        f"{stats.threshold:.1f} (flags {stats.held_out_flag_rate:.2%} of held-out training "
        "rows)",
        "",
        "| input | rows | flagged |",
        "|---|---|---|",
    ]
    for name, x in sets.items():
        flagged = score(x.double(), stats.whiten.double(), stats.centres.double()) > stats.threshold
        lines.append(f"| {name} | {len(x)} | {float(flagged.double().mean()):.1%} |")
    return "\n".join(lines)


def plot_reliability_panels(
    panels: Sequence[tuple[str, dict[str, list[dict[str, float]]]]], path: Path
) -> None:
    """One reliability diagram per row (its label, seed 0's test bins before and after)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.2 * max(len(panels), 1), 3.4), layout="constrained")
    axes = fig.subplots(1, max(len(panels), 1), squeeze=False)[0]
    for ax, (label, bins) in zip(axes, panels, strict=False):
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        for stage, marker in (("before", "o"), ("after", "s")):
            points = bins[stage]
            confidence = [p["confidence"] for p in points]
            ax.plot(confidence, [p["accuracy"] for p in points], marker=marker, label=stage)
        ax.set(title=label, xlabel="confidence", ylabel="accuracy", xlim=(0, 1.02), ylim=(0, 1.02))
        ax.legend(loc="upper left", fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
