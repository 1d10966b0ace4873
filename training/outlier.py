"""The outlier score: how far an input is from every digit of the training rows.

The score is the squared Mahalanobis distance of the 64 raw pixels to the nearest class mean
of the training rows, under their shared (tied) covariance shrunk towards the identity
(``SHRINKAGE`` pixel units² on the diagonal, which keeps the always-blank corner pixels from
making the covariance singular). It is computed from the input alone, so it costs one
64x64 product per row beside the model's forward and flags alike in every family. Picked by
measurement against the energy and max-logit scores of the shipped models (docs/training.md,
"Outlier flag"): those missed noise, salt-and-pepper and letters that this score flags.

The threshold is the 99th percentile of held-out scores: k-fold over the training rows, each
fold scored by the statistics of the other folds, so about 1% of real digits never seen by
the statistics are flagged. ``OutlierScored`` carries the statistics and the threshold inside
the exported TorchScript module: its ``forward`` is the model's logits, unchanged, and its
``forward_scored`` returns the logits and the score in one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from training.data import Split
from training.digits import N_CLASSES, N_FEATURES, PIXEL_MAX
from training.reduce import reduce_grey

#: Ridge added to the covariance's diagonal (pixel values 0..16, so units of pixel²).
SHRINKAGE = 4.0
#: Share of held-out real digits the threshold flags.
HELD_OUT_FLAG_RATE = 0.01
OUTLIER_FOLDS = 5


@dataclass(frozen=True)
class OutlierStats:
    """Whitening matrix, whitened class means and the threshold of the score."""

    whiten: torch.Tensor  # (64, 64): z = x @ whiten has identity covariance
    centres: torch.Tensor  # (10, 64): the class means, whitened
    threshold: float
    held_out_flag_rate: float

    def manifest_entry(self) -> dict[str, Any]:
        """The manifest's ``outlier`` entry."""
        return {
            "method": "mahalanobis_input",
            "shrinkage": SHRINKAGE,
            "threshold": round(self.threshold, 4),
            "held_out_flag_rate": round(self.held_out_flag_rate, 4),
            "folds": OUTLIER_FOLDS,
        }


def _moments(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Whitening matrix and whitened class means of rows ``x`` (float64) with labels ``y``."""
    means = torch.stack([x[y == c].mean(dim=0) for c in range(N_CLASSES)])
    residual = x - means[y]
    cov = residual.T @ residual / len(x) + SHRINKAGE * torch.eye(N_FEATURES, dtype=x.dtype)
    # cov^-1 = L^-T L^-1 with cov = L L^T, so z = x @ L^-T has identity covariance.
    chol = torch.linalg.cholesky(cov)
    whiten = torch.linalg.inv(chol).T
    return whiten, means @ whiten


def score(x: torch.Tensor, whiten: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Squared Mahalanobis distance of each row of ``x`` to its nearest class mean."""
    z = x.to(whiten.dtype) @ whiten
    distances = (z * z).sum(dim=1, keepdim=True) - 2 * z @ centres.T + (centres**2).sum(dim=1)
    return distances.min(dim=1).values.clamp_min(0.0)


def fit_outlier(split: Split, folds: int = OUTLIER_FOLDS, seed: int = 0) -> OutlierStats:
    """Statistics from all training rows; threshold from the ``folds``-fold held-out scores."""
    from sklearn.model_selection import StratifiedKFold

    x, y = split.x_train.double(), split.y_train
    held_out = torch.zeros(len(y), dtype=torch.float64)
    kfold = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fit_idx, out_idx in kfold.split(x.numpy(), y.numpy()):
        whiten, centres = _moments(x[fit_idx], y[fit_idx])
        held_out[out_idx] = score(x[out_idx], whiten, centres)
    threshold = float(torch.quantile(held_out, 1 - HELD_OUT_FLAG_RATE))
    whiten, centres = _moments(x, y)
    rate = float((held_out > threshold).double().mean())
    return OutlierStats(whiten.float(), centres.float(), threshold, rate)


class OutlierScored(nn.Module):
    """A model with its outlier score: ``forward`` is the model's, ``forward_scored`` adds
    the score (N,) to the logits (N, 10) in the same call; ``outlier_threshold`` flags it."""

    def __init__(self, model: nn.Module, stats: OutlierStats) -> None:
        super().__init__()
        self.model = model
        # Frozen parameters rather than buffers: typed attributes for mypy, and TorchScript
        # cannot read the string annotations a class-level buffer declaration would need.
        self.whiten = nn.Parameter(stats.whiten.clone(), requires_grad=False)
        self.centres = nn.Parameter(stats.centres.clone(), requires_grad=False)
        self.centre_norms = nn.Parameter((stats.centres**2).sum(dim=1), requires_grad=False)
        self.outlier_threshold = float(stats.threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.model(x)
        return out

    @torch.jit.export
    def outlier_score(self, x: torch.Tensor) -> torch.Tensor:
        """The score of each row (N,); above ``outlier_threshold`` means an outlier."""
        z = x @ self.whiten
        distances = (z * z).sum(dim=1, keepdim=True) - 2.0 * (z @ self.centres.T)
        return (distances + self.centre_norms).min(dim=1).values.clamp_min(0.0)

    @torch.jit.export
    def forward_scored(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N, 10) and outlier score (N,) of one batch."""
        return self.model(x), self.outlier_score(x)


def flag_rate(model: OutlierScored, split: Split) -> float:
    """Share of the test rows whose outlier score is over the threshold."""
    with torch.inference_mode():
        scores = model.outlier_score(split.x_test)
    return round(float((scores > model.outlier_threshold).double().mean()), 4)


def made_inputs(split: Split, n: int = 200, seed: int = 0) -> dict[str, torch.Tensor]:
    """Inputs that are not digits, (rows, 64) float32 0..16 each: blank, saturated, noise,
    salt-and-pepper, test digits shifted 5 columns (mostly off the frame), inverted test
    digits and capital letters drawn with Pillow's default font, reduced as an upload is."""
    rng = np.random.default_rng(seed)
    test = split.x_test.numpy()[:n]
    frames = test.reshape(-1, 8, 8)
    shifted = np.zeros_like(frames)
    shifted[:, :, 5:] = frames[:, :, :3]
    made = {
        "all zeros": np.zeros((1, N_FEATURES)),
        "all 16s": np.full((1, N_FEATURES), PIXEL_MAX),
        "uniform noise": rng.integers(0, 17, (n, N_FEATURES)),
        "salt-and-pepper": (rng.random((n, N_FEATURES)) < 0.3) * PIXEL_MAX,
        "shifted off the frame": shifted.reshape(-1, N_FEATURES),
        "inverted digits": PIXEL_MAX - test,
        "letters (Pillow)": _letters(),
    }
    return {k: torch.as_tensor(np.asarray(v), dtype=torch.float32) for k, v in made.items()}


def _letters(text: str = "ABCEFGHKLMNPRSTUVWXYZ") -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=30)
    rows = []
    for letter in text:
        image = Image.new("L", (32, 32), 255)
        ImageDraw.Draw(image).text((16, 16), letter, fill=0, font=font, anchor="mm")
        rows.append(reduce_grey(np.asarray(image)))
    return np.stack(rows)
