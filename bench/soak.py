"""Memory soak (not a test): the service's RSS after two consecutive load runs.

    .venv/bin/python bench/soak.py [--models-dir models] [--seconds 60]

Starts ``python -m service`` (pinned like ``serve_bench.py``), then twice drives it for
``--seconds`` with wrk: single vectors and 256-row batches, spread over the three shipped
models. Prints the RSS after start-up and after each run, and the growth from run 1 to run 2
(target: <= 300 MB after a run, growth <= 5%).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from serve_bench import ROOT, SEVEN, lua_script, start, wrk


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of one load run")
    args = parser.parse_args()

    server = start("service", args.models_dir)
    rss = [("after start-up", server.rss_mb())]
    try:
        with tempfile.TemporaryDirectory() as folder:
            single = lua_script(Path(folder), {"pixels": SEVEN})
            batch = lua_script(Path(folder), {"instances": [SEVEN] * 256})
            legs = [
                (f"/models/{name}/predict", script, connections)
                for name in ("cnn", "fnn", "logistic")
                for script, connections in ((single, 32), (batch, 4))
            ]
            for run in (1, 2):
                requests = 0.0
                for path, script, connections in legs:
                    seconds = args.seconds / len(legs)
                    result = wrk(f"http://127.0.0.1:8100{path}", script, connections, seconds)
                    requests += result.rps * seconds
                    if result.errors:
                        print(f"  {path}: {result.errors} errors")
                rss.append((f"after load run {run} ({requests:,.0f} requests)", server.rss_mb()))
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)
    for label, mb in rss:
        print(f"RSS {label}: {mb:.0f} MB")
    growth = rss[2][1] / rss[1][1] - 1
    print(
        f"growth from run 1 to run 2: {growth:+.1%} (target <= +5%); after a run: "
        f"{rss[1][1]:.0f} MB (target <= 300 MB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
