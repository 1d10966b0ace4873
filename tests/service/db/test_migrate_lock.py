"""Processes that start at once on one PostgreSQL database: one migrates, the others wait
for it and find the store current (for real: ``python -m service db upgrade`` processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import Engine, create_engine, func, select, text

from service.db import HEAD
from service.db.migrate import _MIGRATE_LOCK_KEY
from tests.databases import postgres_schema_url

pytestmark = pytest.mark.integration

WAITING = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
    "AND classid = :high AND objid = :low"
)


def test_two_processes_starting_at_once_one_migrates_the_other_waits() -> None:
    with postgres_schema_url("migrate_race") as url:
        engine = create_engine(url)
        env = {**os.environ, "DIGITS_DATABASE_URL": url}
        with engine.connect() as holder:
            # Hold the migration lock, so both processes reach it before either migrates.
            holder.execute(select(func.pg_advisory_lock(_MIGRATE_LOCK_KEY)))
            procs = [
                subprocess.Popen(
                    [sys.executable, "-m", "service", "db", "upgrade"],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(2)
            ]
            try:
                _wait_until_waiting(engine, 2, procs)
            finally:
                holder.execute(select(func.pg_advisory_unlock(_MIGRATE_LOCK_KEY)))
                holder.commit()
            outputs = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        said = sorted(out.strip() for out, _err in outputs)
        assert said == [f"already at {HEAD}", f"upgraded from (empty) to {HEAD}"], outputs
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [(HEAD,)]
        engine.dispose()


def _wait_until_waiting(engine: Engine, count: int, procs: list[subprocess.Popen[str]]) -> None:
    key = {"high": _MIGRATE_LOCK_KEY >> 32, "low": _MIGRATE_LOCK_KEY & 0xFFFFFFFF}
    deadline = time.monotonic() + 60
    with engine.connect() as conn:
        while conn.execute(WAITING, key).scalar_one() < count:
            conn.rollback()
            finished = [p.poll() for p in procs if p.poll() is not None]
            assert not finished, f"a process did not wait for the lock: {procs[0].communicate()}"
            assert time.monotonic() < deadline, "the processes never waited for the lock"
            time.sleep(0.05)
