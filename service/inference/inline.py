"""How many rows a CPU model's forward may run inline on the event loop: timed at start-up.

A micro-batcher runs a batch of at most ``inline_rows`` rows on the event loop instead of its
forward thread (a thread hop costs more than a small forward); ``inline_rows`` times a few
forwards of the model to find the most rows within the budget (``inline_forward_max_us``).
Start-up only: nothing here runs per request.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from service.inference.batcher import Forward
from service.inference.loaded import LoadedModel
from training.digits import N_FEATURES

log = logging.getLogger(__name__)


def inline_rows(model: LoadedModel, budget_us: float, max_batch_size: int) -> int:
    """The most rows whose forward takes at most ``budget_us`` (0 off CPU or with no budget),
    at most ``max_batch_size``.

    The cost is modelled as fixed + per row, from the best of a few timed forwards (so a
    moment of background load does not skew it much) of 1 row and of 16; when
    that line says more rows fit, it is fitted again through 1 row and that many, so the
    line is measured where the limit lies. Every forward timed is then about the budget or
    less: timing ``max_batch_size`` rows (tens of ms for the larger models) would cost
    start-up more than the budget it decides on.
    """
    if model.device != "cpu" or budget_us <= 0:
        return 0
    forward = forward_of(model)
    budget, n = budget_us, max_batch_size
    one = _best_us(forward, 1)
    if n == 1:
        return 1 if one <= budget else 0
    probe = min(n, 16)
    fixed, per_row, rows = _rows_within(budget, one, _best_us(forward, probe), probe, n)
    if rows > probe:  # measure again where the limit lies (``n`` at most)
        fixed, per_row, rows = _rows_within(budget, one, _best_us(forward, rows), rows, n)
    log.info(
        "%s v%s: forward %.0f us + %.1f us/row; batches of <= %d rows run inline",
        model.name, model.version, fixed, per_row, rows,
    )  # fmt: skip
    return rows


def _best_us(forward: Forward, rows: int) -> float:
    """The best of three timed forwards of ``rows`` zero rows, in microseconds."""
    x = np.zeros((rows, N_FEATURES), dtype=np.float32)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        forward(x)
        times.append(time.perf_counter() - start)
    return min(times) * 1e6


def _rows_within(
    budget_us: float, one_us: float, many_us: float, rows: int, most: int
) -> tuple[float, float, int]:
    """(fixed, per row, most rows within ``budget_us``, at most ``most``) of the line through
    1 row taking ``one_us`` and ``rows`` rows taking ``many_us``."""
    per_row = max((many_us - one_us) / (rows - 1), 1e-3)
    fixed = max(one_us - per_row, 0.0)
    fits = int((budget_us - fixed) // per_row)
    return fixed, per_row, max(0, min(fits, most))


def forward_of(model: LoadedModel) -> Forward:
    """The batcher's forward of ``model``: float32 rows (N, 64) in, (N, 11) out."""

    def forward(rows: np.ndarray) -> np.ndarray:
        # (N, 11): probabilities and the outlier score, sliced per request by the batcher
        return model.predict_scored(rows)

    return forward
