"""The loss and accuracy curves of a fit: ``curves.json`` and ``curves.png`` of an artifact
(``training.export``), and the drawing the service serves (``GET /train/{id}/curve.png``)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch-free at run time: the service draws a job's curves with this module
    from training.fit import FitResult

CURVES_JSON = "curves.json"
CURVES_PNG = "curves.png"


def write_curves(folder: Path, result: FitResult, title: str) -> None:
    """Write ``curves.json`` and ``curves.png`` of ``result`` into ``folder``."""
    accuracy = [
        {"iteration": p.iteration, "train": p.train, "test": p.test} for p in result.accuracy
    ]
    (folder / CURVES_JSON).write_text(json.dumps({"loss": result.loss_curve, "accuracy": accuracy}))
    plot_curves(result.loss_curve, accuracy, folder / CURVES_PNG, title)


def plot_curves(
    loss: list[float], accuracy: list[dict[str, float]], path: Path | io.BytesIO, title: str
) -> None:
    """Draw the loss curve and the train/test accuracy curve side by side (PNG or SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(range(1, len(loss) + 1), loss, linewidth=1)
    ax_loss.set(
        title="loss", xlabel="iteration", yscale="log" if loss and min(loss) > 0 else "linear"
    )
    if accuracy:
        its = [p["iteration"] for p in accuracy]
        ax_acc.plot(its, [p["train"] for p in accuracy], label="train")
        ax_acc.plot(its, [p["test"] for p in accuracy], label="test")
        ax_acc.legend(loc="lower right")
    ax_acc.set(title="accuracy", xlabel="iteration")
    fig.suptitle(title)
    fmt = "svg" if isinstance(path, Path) and path.suffix == ".svg" else "png"
    fig.savefig(path, format=fmt, dpi=100)
