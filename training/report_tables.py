"""The tables of ``python -m training.report``: the main table (``format_report``), the
calibration and outlier tables, and its reliability diagrams (one panel per calibrated row,
seed 0, test rows before and after the temperature)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.data import Split
from training.outlier import fit_outlier, made_inputs, score
from training.report_rows import RowResult

#: The fit-time reference of the report: the lecture's CNN.
SPEED_REFERENCE = "lecture cnn"


def _mean(values: Sequence[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return statistics.fmean(kept) if kept else math.nan


def _mean_std(values: list[float], digits: int = 4) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.{digits}f} ± {std:.{digits}f}"


def _ece(row: RowResult, rows: str) -> str:
    if not row.calibration:
        return "-"
    before = statistics.fmean(c[f"ece_{rows}_before"] for c in row.calibration)
    after = statistics.fmean(c[f"ece_{rows}_after"] for c in row.calibration)
    return f"{before:.4f} → {after:.4f}"


def format_report(rows: list[RowResult], n_seeds: int) -> str:
    """The markdown table of the report."""
    reference = next((r for r in rows if f"{r.recipe} {r.key}" == SPEED_REFERENCE), None)
    ref_s = statistics.fmean(reference.fit_seconds) if reference else None
    lines = [
        f"| model | recipe | it. | train acc | test acc ({n_seeds} seeds) | lecture test "
        "| errors /360 (mean, range) | fit s | fit / lecture CNN | fwd µs batch 1 "
        "| fwd µs/row @256 | T | test ECE | out-of-fold ECE |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        label = r.label if len(r.test) == n_seeds else f"{r.label}, {len(r.test)} seeds"
        lecture = "-" if r.reported is None else f"{r.reported[1]:.4f}"
        if r.reported is not None and r.reported[0] is not None:
            lecture += f" (train {r.reported[0]:.4f})"
        fit_s = statistics.fmean(r.fit_seconds)
        ratio = f"{fit_s / ref_s:.2f}x" if ref_s else "-"
        temperature = (
            f"{statistics.fmean(c['temperature'] for c in r.calibration):.3f}"
            if r.calibration
            else "-"
        )
        lines.append(
            f"| {label} | {r.recipe} | {r.iterations} | {_mean_std(r.train)} "
            f"| {_mean_std(r.test)} | {lecture} "
            f"| {statistics.fmean(r.errors):.1f} ({min(r.errors)}-{max(r.errors)}) "
            f"| {fit_s:.2f} | {ratio} | {r.forward.batch1_us:.1f} "
            f"| {r.forward.per_row_batch256_us:.3f} | {temperature} | {_ece(r, 'test')} "
            f"| {_ece(r, 'out_of_fold')} |"
        )
    return "\n".join(lines)


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
