"""Where a predict request's CPU time goes, by ablation, in process (not a test).

    taskset -c 0 .venv/bin/python bench/request_cost.py [--conc 64] [--rounds 9] [-n 3000]

Drives the real app as ``bench/asgi_micro.py`` does (no HTTP server: uvicorn's own ~70-140 us
a request is not in these figures) and measures the process CPU time per single-row CNN
request with one part of the path replaced by a constant or removed at a time: the model's
forward, the body decoding, the answer encoding, the metrics, the micro-batcher (the forward
called directly), and each of the service's own middlewares. Every variant runs in the same
process, interleaved round by round; each figure is the median over rounds, and each part's
cost is the difference to the variant without the forward (``no forward``), so the forward's
cost does not hide the others. A part's cost measured this way includes the cache misses it
causes in the rest of the path. Figures in docs/service.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import asgi_micro  # noqa: E402  # the harness beside this file

import service.http.routes.predict  # noqa: E402
import service.inference.batcher  # noqa: E402
import service.metrics  # noqa: E402
from service.http.app import create_app  # noqa: E402
from service.inference.dataplane import InferenceResult  # noqa: E402
from service.inference.loaded import LoadedModel  # noqa: E402
from service.settings import Settings  # noqa: E402

OURS = ("RequestMetrics", "AccessControl", "BodyLimit", "RequestDeadline")


class Ablations:
    """Each part of the predict path, replaced by a constant or removed, and put back."""

    def __init__(self, app: Any, body: bytes) -> None:
        self.app = app
        predict = service.http.routes.predict
        metrics = service.metrics
        self.saved: list[tuple[Any, str, Any]] = [
            (LoadedModel, "predict_scored", LoadedModel.predict_scored),
            (predict, "decode_rows", predict.decode_rows),
            (predict, "encode", predict.encode),
            (metrics.ServiceMetrics, "observe_request", metrics.ServiceMetrics.observe_request),
            (metrics.ServiceMetrics, "observe_batch", metrics.ServiceMetrics.observe_batch),
            (metrics.VersionMetrics, "observe", metrics.VersionMetrics.observe),
            (
                service.inference.batcher.MicroBatcher,
                "submit",
                service.inference.batcher.MicroBatcher.submit,
            ),
        ]
        self.middleware = list(app.user_middleware)
        self.rows = predict.decode_rows(body, 1)
        self.answer = predict.encode(_one_answer())
        # (1, 11): class probabilities and the outlier score, as ``predict_scored`` answers
        scored = torch.cat([torch.softmax(torch.rand(1, 10), dim=1), torch.zeros(1, 1)], 1)
        self.probabilities = scored.numpy()

    def restore(self) -> None:
        for owner, name, value in self.saved:
            setattr(owner, name, value)
        self._keep_middleware(lambda _name: True)

    def forward(self) -> None:
        probabilities = self.probabilities
        LoadedModel.predict_scored = lambda _self, x: np.broadcast_to(probabilities, (len(x), 11))

    def decode(self) -> None:
        rows = self.rows
        service.http.routes.predict.decode_rows = lambda _body, _max_rows: rows

    def encode(self) -> None:
        answer = self.answer
        service.http.routes.predict.encode = lambda _result, **_extra: answer

    def metrics(self) -> None:
        def nothing(*_args: Any, **_kwargs: Any) -> None:
            return None

        service.metrics.ServiceMetrics.observe_request = nothing
        service.metrics.ServiceMetrics.observe_batch = nothing
        service.metrics.VersionMetrics.observe = nothing

    def batcher(self) -> None:
        async def submit(batcher: Any, rows: Any, deadline: float | None = None) -> Any:
            return batcher.forward(rows)

        service.inference.batcher.MicroBatcher.submit = submit

    def without(self, *names: str) -> Callable[[], None]:
        return lambda: self._keep_middleware(lambda name: name not in names)

    def _keep_middleware(self, keep: Callable[[str], bool]) -> None:
        self.app.user_middleware = [m for m in self.middleware if keep(m.cls.__name__)]
        self.app.middleware_stack = None  # Starlette builds it again on the next request


def _one_answer() -> InferenceResult:
    probabilities = np.full((1, 10), 0.1, dtype=np.float32)
    return InferenceResult("cnn", 1, "cpu", probabilities, "production")


async def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    tmp = tempfile.mkdtemp()
    settings = Settings(
        models_dir=args.models_dir,
        device="cpu",
        database_url=f"sqlite:///{tmp}/jobs.db",
        reload_interval_s=0,
    )
    app = create_app(settings)
    body = json.dumps({"instances": [asgi_micro.SEVEN]}).encode()
    cut = Ablations(app, body)
    variants: dict[str, list[Callable[[], None]]] = {
        "whole path": [],
        "no forward": [cut.forward],
        "  - decoding": [cut.forward, cut.decode],
        "  - encoding": [cut.forward, cut.encode],
        "  - metrics": [cut.forward, cut.metrics],
        "  - micro-batcher": [cut.forward, cut.batcher],
        **{f"  - {name}": [cut.forward, cut.without(name)] for name in OURS},
        "  - all four middlewares": [cut.forward, cut.without(*OURS)],
        "  - all of the above": [
            cut.forward, cut.decode, cut.encode, cut.metrics, cut.batcher, cut.without(*OURS)
        ],
    }  # fmt: skip
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    async with app.router.lifespan_context(app):
        await asgi_micro.settle()
        for round_ in range(args.rounds):
            for name, changes in variants.items():
                cut.restore()
                for change in changes:
                    change()
                _wall, per_request = await asgi_micro._run(app, "/predict", body, args.conc, args.n)
                cpu[name].append(per_request)
            print(f"round {round_ + 1}/{args.rounds} done", flush=True)
        cut.restore()
    base = statistics.median(cpu["no forward"])
    print(f"\nc={args.conc}, {args.rounds} rounds of {args.n} requests; median CPU us/request\n")
    print("| variant | CPU us/req | the part costs |")
    print("|---|---:|---:|")
    for name, values in cpu.items():
        median = statistics.median(values)
        if name == "whole path":
            shown = f"the forward: {median - base:.0f}"
        else:
            shown = "" if name == "no forward" else f"{base - median:.0f}"
        print(f"| {name.strip()} | {median:.0f} | {shown} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--conc", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("-n", type=int, default=3000)
    uvloop.run(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
