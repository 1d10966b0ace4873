"""Serving cost per row of each served architecture, relative to the default CNN.

``python -m training.cost [--rounds 3]`` scripts each architecture (untrained: the cost does
not depend on the weights) and times its forward pass at batch 1 and per row at batch 256
with ``measure_forward`` (fastest of several blocks, one thread), interleaving the models
over ``--rounds`` rounds and keeping each one's best, so a busy moment of a shared machine
inflates no model more than another. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping

import torch
from torch import nn

from training.cli import add_threads_argument, positive_int
from training.contract import ForwardCost
from training.ensemble import Ensemble
from training.ensemble_spec import DEFAULT_MEMBERS
from training.models import build_model
from training.recipes import DEFAULT
from training.scripting import measure_forward
from training.specs import FAMILIES, Family


def _build(families: tuple[Family, ...]) -> Callable[[], nn.Module]:
    """A maker of one family's default model, or of an ensemble of several."""

    def make() -> nn.Module:
        models = [build_model(DEFAULT[f].spec) for f in families]
        return models[0] if len(models) == 1 else Ensemble(models)

    return make


def architectures() -> dict[str, Callable[[], nn.Module]]:
    """The timed architectures by label: each family's default and two ensembles."""
    out: dict[str, Callable[[], nn.Module]] = {f: _build((f,)) for f in FAMILIES}
    out["ensemble (cnn + cnn)"] = _build(("cnn", "cnn"))
    out[f"ensemble ({' + '.join(DEFAULT_MEMBERS)})"] = _build(DEFAULT_MEMBERS)
    return out


def main(argv: list[str] | None = None) -> int:
    """Time every architecture and print the table."""
    parser = argparse.ArgumentParser(prog="python -m training.cost", description=__doc__)
    parser.add_argument("--rounds", type=positive_int, default=3, help="interleaved rounds")
    parser.add_argument(
        "--repeats", type=positive_int, default=20, help="batch-1 calls per timed block"
    )
    parser.add_argument(
        "--blocks",
        type=positive_int,
        default=50,
        help="timed blocks per model and round, the fastest kept (short blocks, many of them: "
        "fewer of them are cut by another process on a busy machine)",
    )
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    modules = {k: torch.jit.script(make().eval()) for k, make in architectures().items()}
    best = _best_costs(modules, args.rounds, args.repeats, args.blocks)
    sys.stdout.write(_table(best) + "\n")
    return 0


def _best_costs(
    modules: Mapping[str, torch.jit.ScriptModule], rounds: int, repeats: int, blocks: int
) -> dict[str, ForwardCost]:
    """Each module's forward cost, the best of ``rounds`` interleaved rounds (each figure on
    its own)."""
    best: dict[str, ForwardCost] = {}
    for _ in range(rounds):
        for label, module in modules.items():
            cost = measure_forward(module, repeats=repeats, blocks=blocks)
            old = best.get(label)
            best[label] = (
                cost
                if old is None
                else ForwardCost(
                    batch1_us=min(old.batch1_us, cost.batch1_us),
                    per_row_batch256_us=min(old.per_row_batch256_us, cost.per_row_batch256_us),
                    torch_threads=cost.torch_threads,
                )
            )
    return best


def _table(best: dict[str, ForwardCost]) -> str:
    """The markdown table of the costs, each also relative to the CNN's."""
    ref = best["cnn"]
    lines = ["| model | µs batch 1 | vs CNN | µs/row @256 | vs CNN |", "|---|---|---|---|---|"]
    for label, c in best.items():
        lines.append(
            f"| {label} | {c.batch1_us:.1f} | {c.batch1_us / ref.batch1_us:.2f}x "
            f"| {c.per_row_batch256_us:.3f} "
            f"| {c.per_row_batch256_us / ref.per_row_batch256_us:.2f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
