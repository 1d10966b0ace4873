"""The tables and the goal summary of ``bench/serve_bench.py`` (not a benchmark by itself):
every figure comes from one run's ``Figures``; each table is markdown, ready for the docs."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cold_start import Start
from cold_start import table as cold_table
from serve_common import Result, Server, median

ROWS = 256  # rows of a batch request


@dataclass
class Figures:
    """What one run measured (lists: one result per round)."""

    args: argparse.Namespace
    names: list[str]  # the servers answering /predict, in table order (the service first)
    families: list[str]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    bytecode: str = ""
    skipped: dict[str, str] = field(default_factory=dict)  # an optional reference: why not
    forward: dict[str, float] = field(default_factory=dict)  # in-process TorchScript rows/s
    cold: dict[str, list[Start]] = field(default_factory=dict)
    servers: dict[str, Server] = field(default_factory=dict)
    rss_after: dict[str, float] = field(default_factory=dict)
    mean_batch: float = float("nan")
    #: The service's /predict from readiness: c -> (seconds after ready the step began, result)
    ready: dict[int, tuple[float, Result]] = field(default_factory=dict)
    single: dict[tuple[str, int], list[Result]] = field(default_factory=dict)
    batch: dict[str, list[Result]] = field(default_factory=dict)  # /predict 256 JSON rows
    v2_single: dict[int, list[Result]] = field(default_factory=dict)
    v2_batch: dict[str, list[Result]] = field(default_factory=dict)  # /v2 256 binary rows
    ts_batch: dict[str, list[Result]] = field(default_factory=dict)  # the same, TorchScript
    mlserver: dict[int, list[Result]] = field(default_factory=dict)  # MLServer /v2 one row

    def has(self, name: str) -> bool:
        return name in self.servers


def report(f: Figures) -> None:
    """Every table of the run, then the summary of the issue's goals."""
    args = f.args
    print(f"\n{args.rounds} interleaved rounds of {args.seconds:g} s; medians.")
    if {"ceiling", "naive", "floor"} <= set(f.names):
        single_table(f)
    if f.has("torchscript"):
        runtimes(f)
    tail(f)
    if f.mlserver:
        against_mlserver(f)
    batch_table(f)
    v2_tables(f)
    if f.ts_batch:
        batch_runtimes(f)
    print("\n| server | start to ready s (this run's start) | RSS of its tree after the run MB |")
    print("|---|---:|---:|")
    for name, server in f.servers.items():
        print(f"| {name} | {server.cold_start_s:.2f} | {f.rss_after[name]:.0f} |")
    if f.cold:
        print(f"\nCold start and RSS at rest ({f.bytecode}):")
        cold_table(f.cold)
    summary(f)


def single_table(f: Figures) -> None:
    head = (
        "\n| single vector, CNN | server | req/s | p50 ms | p99 ms | p99/p50 | errors | vs floor "
        "| vs ceiling | vs naive"
    )
    baseline = "baseline" in f.names
    print(head + " | CPU us/req | forward us/req |" + (" vs baseline |" if baseline else ""))
    print("|---|---|" + "---:|" * (10 + baseline))
    for c in f.args.concurrency:
        ceiling, naive = median(f.single[("ceiling", c)]), median(f.single[("naive", c)])
        floor = median(f.single[("floor", c)])
        for name in f.names:
            r = median(f.single[(name, c)])
            line = (
                f"| c={c} | {name} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
                f"| {r.p99_ms / r.p50_ms:.1f} | {r.errors} | {r.rps / floor.rps:.2f}x "
                f"| {r.rps / ceiling.rps:.2f}x | {r.rps / naive.rps:.2f}x | {r.cpu_us:.0f} "
                f"| {r.forward_us:.0f} |"
            )
            if baseline:
                line += f" {r.rps / median(f.single[('baseline', c)]).rps:.3f}x |"
            print(line)


def runtimes(f: Figures) -> None:
    """The service on its default runtime (ONNX Runtime) against itself on TorchScript."""
    side_by_side(
        "\n| single CNN row /predict | ONNX Runtime req/s | TorchScript req/s | ratio "
        "| CPU us/req ORT | TorchScript | ratio | forward us/req ORT | TorchScript |",
        [
            (f"c={c}", f.single[("service", c)], f.single[("torchscript", c)])
            for c in f.args.concurrency
        ],
        lambda o, t: (
            f"{o.rps:,.0f} | {t.rps:,.0f} | {o.rps / t.rps:.2f}x | {o.cpu_us:.0f} "
            f"| {t.cpu_us:.0f} | {o.cpu_us / t.cpu_us:.2f}x | {o.forward_us:.0f} "
            f"| {t.forward_us:.0f}"
        ),
    )


def tail(f: Figures) -> None:
    """p50 and p99 of the service's first steps, which began when it said ready."""
    print(
        "\nTail from readiness: the service started last; its /predict (one CNN row) at each "
        "concurrency in turn, the first step launched when /health/ready first answered 200, "
        "no warm-up before it."
    )
    print(
        "| one CNN row, service | step began after ready s | req/s | p50 ms | p99 ms | p99/p50 "
        "| errors | from readiness | rounds' median p99/p50 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|")
    for c, (after, r) in f.ready.items():
        rounds = median(f.single[("service", c)])
        print(
            f"| c={c} | {after:.3f} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
            f"| {r.p99_ms / r.p50_ms:.1f}x | {r.errors} | yes | "
            f"{rounds.p99_ms / rounds.p50_ms:.1f}x |"
        )


def against_mlserver(f: Figures) -> None:
    side_by_side(
        "\n| one CNN row, /v2 JSON | service req/s | MLServer req/s | ratio | p50 ms service "
        "| MLServer | p99 ms service | MLServer | CPU us/req service | MLServer | errors |",
        [(f"c={c}", f.v2_single[c], f.mlserver[c]) for c in f.args.concurrency],
        lambda s, m: (
            f"{s.rps:,.0f} | {m.rps:,.0f} | {s.rps / m.rps:.2f}x | {s.p50_ms:.2f} "
            f"| {m.p50_ms:.2f} | {s.p99_ms:.2f} | {m.p99_ms:.2f} | {s.cpu_us:.0f} "
            f"| {m.cpu_us:.0f} | {s.errors + m.errors}"
        ),
    )


def batch_table(f: Figures) -> None:
    print(
        "\n| batch of 256 rows, /predict JSON | rows/s | in-process TorchScript forward rows/s "
        "| ratio | p50 ms | errors | CPU us/row |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for m, results in f.batch.items():
        r = median(results)
        rows = r.rps * ROWS
        print(
            f"| {batch_label(f, m)} | {rows:,.0f} | {f.forward[m]:,.0f} "
            f"| {rows / f.forward[m]:.2f}x | {r.p50_ms:.2f} | {r.errors} "
            f"| {r.cpu_us / ROWS:.1f} |"
        )


def v2_tables(f: Figures) -> None:
    """The Open Inference Protocol against /predict of the same service, same rounds."""
    side_by_side(
        "\n| one row, CNN | /v2 JSON req/s | /predict req/s | /v2 / /predict | p99 ms /v2 "
        "| p99 ms /predict | CPU us/req /v2 | /predict |",
        [(f"c={c}", f.v2_single[c], f.single[("service", c)]) for c in f.args.concurrency],
        lambda v2, predict: (
            f"{v2.rps:,.0f} | {predict.rps:,.0f} | {v2.rps / predict.rps:.2f}x "
            f"| {v2.p99_ms:.2f} | {predict.p99_ms:.2f} | {v2.cpu_us:.0f} | {predict.cpu_us:.0f}"
        ),
    )
    side_by_side(
        "\n| batch of 256 rows | /v2 binary rows/s | /predict JSON rows/s | ratio "
        "| CPU us/row /v2 | /predict | errors |",
        [(batch_label(f, m), results, f.batch[m]) for m, results in f.v2_batch.items()],
        lambda v2, predict: (
            f"{v2.rps * ROWS:,.0f} | {predict.rps * ROWS:,.0f} | {v2.rps / predict.rps:.2f}x "
            f"| {v2.cpu_us / ROWS:.1f} | {predict.cpu_us / ROWS:.1f} | {v2.errors + predict.errors}"
        ),
    )


def batch_runtimes(f: Figures) -> None:
    """256-row /v2 binary batches per family: ONNX Runtime against TorchScript."""
    side_by_side(
        "\n| batch of 256 rows, /v2 binary | ONNX Runtime rows/s | TorchScript rows/s | ratio "
        "| CPU us/row ORT | TorchScript | ratio | errors |",
        [(batch_label(f, m), f.v2_batch[m], results) for m, results in f.ts_batch.items()],
        lambda o, t: (
            f"{o.rps * ROWS:,.0f} | {t.rps * ROWS:,.0f} | {o.rps / t.rps:.2f}x "
            f"| {o.cpu_us / ROWS:.1f} | {t.cpu_us / ROWS:.1f} | {o.cpu_us / t.cpu_us:.2f}x "
            f"| {o.errors + t.errors}"
        ),
    )


def side_by_side(
    head: str,
    rows: Iterable[tuple[str, list[Result], list[Result]]],
    cells: Callable[[Result, Result], str],
) -> None:
    """A markdown table of two servers' results side by side: ``head`` (the first column
    left-aligned, the others right), then per ``(label, a, b)`` a row of the label and the
    ``cells`` of the medians of ``a`` and ``b``."""
    print(head)
    print("|---|" + "---:|" * (head.count("|") - 2))
    for label, a, b in rows:
        print(f"| {label} | {cells(median(a), median(b))} |")


def batch_label(f: Figures, family: str) -> str:
    """The first cell of a batch table's row."""
    return f"{family} (c={f.args.batch_connections})"


def summary(f: Figures) -> None:
    """Every goal of issue 24 with its figure, ratio and verdict (n/a where the run lacks
    what it needs)."""
    args = f.args
    lines: list[str] = []

    def goal(what: str, figure: str, ratio: float, target: str, met: bool | None) -> None:
        verdict = "reference, no goal" if met is None else "met" if met else "MISSED"
        lines.append(f"| {what} | {figure} | {ratio:.2f}x | {target} | {verdict} |")

    def absent(what: str, target: str, needs: str) -> None:
        lines.append(f"| {what} | n/a | | {target} | not measured: {needs} |")

    for c in args.concurrency:
        what = f"CNN one-row CPU/request, ONNX Runtime vs TorchScript, c={c}"
        if f.has("torchscript"):
            o, t = median(f.single[("service", c)]), median(f.single[("torchscript", c)])
            ratio = o.cpu_us / t.cpu_us
            goal(what, f"{o.cpu_us:.0f} vs {t.cpu_us:.0f} us", ratio, "<= 0.75x", ratio <= 0.75)
        else:
            absent(what, "<= 0.75x", "--torchscript")
    what = "256-row CNN /v2 binary rows/s, ONNX Runtime vs TorchScript"
    if "cnn" in f.ts_batch:
        o, t = median(f.v2_batch["cnn"]).rps * ROWS, median(f.ts_batch["cnn"]).rps * ROWS
        goal(what, f"{o:,.0f} vs {t:,.0f} rows/s", o / t, ">= 3x", o / t >= 3)
    else:
        absent(what, ">= 3x", "--torchscript")
    what = "c=1 /predict req/s vs the constant-answer FastAPI app (ceiling)"
    if ("ceiling", 1) in f.single:
        s, ceiling = median(f.single[("service", 1)]).rps, median(f.single[("ceiling", 1)]).rps
        goal(what, f"{s:,.0f} vs {ceiling:,.0f} req/s", s / ceiling, ">= 0.8x", s / ceiling >= 0.8)
    else:
        absent(what, ">= 0.8x", "the references (not --v2-only) and c=1")
    for c in args.concurrency:
        what = f"/v2 one-row JSON req/s vs MLServer, c={c}"
        if c in f.mlserver:
            s, m = median(f.v2_single[c]).rps, median(f.mlserver[c]).rps
            goal(what, f"{s:,.0f} vs {m:,.0f} req/s", s / m, ">= 3x", s / m >= 3)
        else:
            absent(what, ">= 3x", f.skipped.get("mlserver", "--mlserver"))
    what = "cold start to ready, service vs naive FastAPI app (imports torch)"
    if "service" in f.cold and "naive" in f.cold:
        s = statistics.median(x.ready_s for x in f.cold["service"])
        n = statistics.median(x.ready_s for x in f.cold["naive"])
        goal(what, f"{s:.2f} vs {n:.2f} s", s / n, "<= 0.6x", s / n <= 0.6)
    else:
        absent(what, "<= 0.6x", "--cold-starts 1 or more")
    for name in ("service", "torchscript"):  # the goal is the service's, as it starts
        what = f"RSS of the serving tree at rest ({name}), MB; ratio to 150 MB"
        if name in f.cold:
            rss = statistics.median(x.rss_mb for x in f.cold[name])
            met = rss < 150 if name == "service" else None
            goal(what, f"{rss:.0f} MB", rss / 150, "< 150 MB", met)
        elif name == "service":
            absent(what, "< 150 MB", "--cold-starts 1 or more")
    for c, (after, r) in f.ready.items():
        what = f"p99/p50, service /predict c={c}, from readiness (began {after:.2f} s after ready)"
        ratio = r.p99_ms / r.p50_ms
        goal(what, f"{r.p50_ms:.2f} / {r.p99_ms:.2f} ms", ratio, "<= 3x", ratio <= 3)
    print(
        f"\n### Issue 24 goals: {args.rounds} round(s) of {args.seconds:g} s, "
        f"{args.cold_starts} cold start(s) each; load average {f.load_before[0]:.2f} before, "
        f"{f.load_after[0]:.2f} after"
    )
    print("\n| goal | figure | ratio | target | result |")
    print("|---|---|---:|---|---|")
    print("\n".join(lines))
    if f.skipped:
        for name, why in f.skipped.items():
            print(f"{name}: skipped: {why}")
