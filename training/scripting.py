"""TorchScript a fitted model and time its forward: what ``export`` does before it writes the
artifact, and what the benchmarks (``cv``, ``report``, ``cost``) measure."""

from __future__ import annotations

import io
import math
import time

import torch
from torch import nn

from training.contract import ForwardCost
from training.digits import N_FEATURES, PIXEL_MAX


def script_model(model: nn.Module) -> torch.jit.ScriptModule:
    """``torch.jit.script`` the eval-mode model and check the saved-and-reloaded module gives
    the same logits as the eager one."""
    model.eval()
    scripted = torch.jit.script(model)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    reloaded = torch.jit.load(buffer)  # type: ignore[no-untyped-call]  # torch ships it untyped
    probe = torch.arange(3 * N_FEATURES, dtype=torch.float32).reshape(3, N_FEATURES) % 17
    with torch.inference_mode():
        torch.testing.assert_close(reloaded(probe), model(probe))
    return scripted


def measure_forward(
    module: torch.jit.ScriptModule, repeats: int = 200, blocks: int = 5
) -> ForwardCost:
    """Batch 1 and batch 256 forward times after warm-up: the mean call time of the fastest
    of ``blocks`` timed blocks, so that other work on a shared machine inflates it less."""
    costs = []
    for batch, reps in ((1, repeats), (256, max(repeats // 10, 5))):
        x = torch.rand(batch, N_FEATURES) * PIXEL_MAX
        best = math.inf
        with torch.inference_mode():
            for _ in range(5):
                module(x)
            for _ in range(blocks):
                start = time.perf_counter()
                for _ in range(reps):
                    module(x)
                best = min(best, (time.perf_counter() - start) / reps * 1e6)
        costs.append(best)
    return ForwardCost(
        batch1_us=round(costs[0], 2),
        per_row_batch256_us=round(costs[1] / 256, 3),
        torch_threads=torch.get_num_threads(),
    )
