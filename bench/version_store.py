"""What a replica's refresh costs with a version store (not a test): moto's S3 server in its
own process, ``--versions`` small versions published, then the time of the first pull into
an empty cache, of a pull with nothing new (the cost of each refresh), and of a pull against
a closed port (how fast readiness degrades):

    .venv/bin/python bench/version_store.py [--versions 20] [--rounds 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.inference.artifact_store import StoreError, VersionStore  # noqa: E402
from tests.service.conftest import write_artifact  # noqa: E402
from tests.service.s3 import BUCKET, CREDENTIALS, Moto, running  # noqa: E402
from tests.service.test_registry import lit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    os.environ.update(CREDENTIALS)
    moto = Moto()
    os.environ["AWS_ENDPOINT_URL_S3"] = moto.endpoint
    tmp = Path(tempfile.mkdtemp())
    store = VersionStore(f"s3://{BUCKET}/bench")
    with running(moto):
        for version in range(1, args.versions + 1):
            store.claim("m", version - 1)
            store.upload(write_artifact(tmp / f"v{version}", "m", version, lit(1)), "m", version)
        start = time.perf_counter()
        store.pull(tmp / "cache")
        print(f"first pull of {args.versions} versions: {time.perf_counter() - start:.3f} s")
        times = []
        for _round in range(args.rounds):
            start = time.perf_counter()
            store.pull(tmp / "cache")
            times.append(time.perf_counter() - start)
        print(f"pull with nothing new: median {statistics.median(times) * 1000:.1f} ms")
    start = time.perf_counter()
    try:
        store.pull(tmp / "cache")
    except StoreError:
        print(f"store gone (port closed): StoreError after {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
