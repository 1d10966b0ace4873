"""Two processes promote versions of one model at once: the compare-and-set of ``promote``
(``service/rollout/promotion.py``) makes the later one check again against the version the
earlier one moved to; the history shows both decisions; on SQLite and PostgreSQL.

Process B reads production (version 1) and measures slowly; meanwhile process A promotes
version 2 over version 1. Version 3 beats 1 but not 2: B's move, made against the check on 1,
must not land; checked again against 2, it is refused.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from service.rollout.aliases import PRODUCTION, AliasStore
from service.rollout.gate import Gate
from service.rollout.promotion import promote
from tests.databases import BACKENDS, database_url

FIGURES = {1: 0.90, 2: 0.95, 3: 0.93}
TOLERANCE = 0.005


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as found:
        store = AliasStore.open(found)
        store.ensure_production("m", 1, "first")
        store.close()
        yield found


def promote_in_process(url: str, version: int, checking: Event, slow: bool) -> None:
    """Promote ``version`` of ``m`` as ``job:<version>``; a slow one signals once it has
    read production and is measuring, a fast one starts only then."""

    def measure(v: int) -> float:
        if slow:
            checking.set()
            time.sleep(1.0)
        return FIGURES[v]

    if not slow:
        checking.wait(60)
    store = AliasStore.open(url)
    try:
        gate = Gate(measure, TOLERANCE)
        promote(store, "m", version, PRODUCTION, gate, f"job:{version}", reason="race")
    finally:
        store.close()


def test_two_processes_promote_at_once_and_the_gate_holds_against_the_replaced_version(
    url: str,
) -> None:
    context = multiprocessing.get_context("spawn")
    checking = context.Event()
    procs = [
        context.Process(target=promote_in_process, args=(url, 3, checking, True)),
        context.Process(target=promote_in_process, args=(url, 2, checking, False)),
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    store = AliasStore.open(url)
    history = list(reversed(store.history("m")))
    production = store.aliases("m")[PRODUCTION]
    store.close()
    decisions = {m.actor: (m.kind, m.from_version, m.to_version) for m in history[1:]}
    assert decisions == {"job:2": ("move", 1, 2), "job:3": ("refused", 2, 3)}
    last = [m for m in history if m.kind != "refused"][-1]
    assert last.to_version == production == 2
    assert last.from_version is not None
    assert FIGURES[production] >= FIGURES[last.from_version] - TOLERANCE
