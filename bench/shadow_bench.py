"""Shadow benchmark: predict throughput at c=64 with a shadow version set vs without (not a
test).

    .venv/bin/python bench/shadow_bench.py [--seconds 5] [--rounds 3] [--connections 64]

One service process (pinned to core 0, as in ``bench/serve_bench.py``; wrk on core 1) serves
the shipped CNN as ``production`` (version 1) and a copy of it as ``staging`` (version 2).
Rounds alternate on the same process: shadow off (``{}``), then ``{"shadow": "staging"}``;
each figure is the median over rounds, and the ratio is shadow / no shadow, measured in the
same run. Also printed: rows the shadow compared and requests it dropped (queue full) during
the shadow rounds. Target (issue 11): ratio >= 0.9.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from serve_bench import (
    PORTS,
    ROOT,
    SEVEN,
    Result,
    lua_script,
    measure,
    median,
    progress,
    start,
    stop,
)

#: Its own port: serve_bench's 8100 may be taken by another benchmark on the machine.
PORT = 8170
PORTS["service"] = PORT
BASE = f"http://127.0.0.1:{PORT}"


def call(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{BASE}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.load(response)
        return answer


def models_with_a_copy(folder: Path) -> Path:
    """A copy of ``models/`` whose ``cnn`` also has version 2 (the same weights)."""
    target = folder / "models"
    shutil.copytree(ROOT / "models", target)
    shutil.copytree(target / "cnn" / "1", target / "cnn" / "2")
    manifest = json.loads((target / "cnn" / "2" / "manifest.json").read_text())
    manifest["version"] = 2
    (target / "cnn" / "2" / "manifest.json").write_text(json.dumps(manifest))
    return target


def shadow_counts() -> tuple[int, int]:
    """Rows compared by the shadow so far, and requests dropped."""
    traffic = call("GET", "/models/cnn")["traffic"]
    return sum(s["compared"] for s in traffic["shadow_stats"]), traffic["shadow_dropped"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", PORT)) == 0:
            raise SystemExit(f"port {PORT} is taken: stop what listens there first")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = start("service", models_with_a_copy(folder))
        try:
            call("PUT", "/models/cnn/aliases/staging", {"version": 2, "reason": "bench"})
            script = lua_script(folder, {"pixels": SEVEN})
            url = f"{BASE}/predict"
            measure(server, url, script, args.connections, 2)  # warm-up
            results: dict[str, list[Result]] = {"off": [], "shadow": []}
            compared = dropped = 0
            for round_ in range(args.rounds):
                for mode, body in (("off", {}), ("shadow", {"shadow": "staging"})):
                    call("PUT", "/models/cnn/traffic", body)
                    before = shadow_counts()
                    result = measure(server, url, script, args.connections, args.seconds)
                    after = shadow_counts()
                    if mode == "shadow":
                        compared += after[0] - before[0]
                        dropped += after[1] - before[1]
                    results[mode].append(result)
                    progress(f"round {round_ + 1} {mode:>6}: {result}, {result.cpu_us:.0f} us CPU")
        finally:
            stop([server])
    off, on = median(results["off"]), median(results["shadow"])
    requests = on.rps * args.seconds * args.rounds
    progress(f"c={args.connections}, medians over {args.rounds} rounds of {args.seconds:g} s:")
    progress(f"  no shadow: {off}")
    progress(f"  shadow:    {on}")
    progress(f"  ratio shadow / no shadow: {on.rps / off.rps:.2f}x (target >= 0.9x)")
    progress(
        f"  server CPU per request: {off.cpu_us:.0f} us without, {on.cpu_us:.0f} us with "
        f"({off.cpu_us / on.cpu_us:.2f}x the requests per CPU second; robust to background load)"
    )
    progress(
        f"  shadow rounds: {compared:,} rows compared, {dropped:,} requests dropped "
        f"(~{dropped / max(requests, 1):.0%} of requests)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
