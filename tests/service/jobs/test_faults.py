"""Faults met for real: a job store on a filesystem that fills up (a tiny tmpfs).

Mounting needs root on Linux; elsewhere these tests skip, saying why.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.http.app import create_app
from service.jobs.worker import RETRY_DELAYS_S
from tests.service.jobs.conftest import (
    LONG_CNN,
    job_settings,
    running_with_steps,
    wait_until,
)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted on a fresh folder, unmounted afterwards."""
    mount_point = tmp_path / "fs"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs the full-disk test to run: {reason}")
        pytest.skip(reason)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@contextlib.contextmanager
def full_disk(database: Path) -> Iterator[None]:
    """The filesystem of ``database`` full while inside: its WAL is checkpointed to zero
    bytes first, so the next write has to grow a file and fails."""
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
        for _ in range(200):  # a reader of the WAL makes the truncation wait
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                break
    filler = database.parent / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (1 << 16, 1):
            with contextlib.suppress(OSError):
                while out.write(b"\0" * size):
                    pass
    try:
        yield
    finally:
        filler.unlink()


def test_submit_to_a_full_store_is_503_with_retry_after(small_fs: Path, models_dir: Path) -> None:
    """A store that cannot take the job answers 503, a reason and ``Retry-After``, not 500."""
    settings = job_settings(small_fs, models_dir)
    with TestClient(create_app(settings)) as client:
        with full_disk(small_fs / "jobs.db"):
            refused = client.post("/train", json=LONG_CNN)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "10"
        error = refused.json()["error"]
        assert error["code"] == "store_unavailable"
        assert "full" in error["message"]
        assert client.post("/train", json=LONG_CNN).status_code == 202  # space again: accepted


def test_a_job_whose_progress_cannot_be_written_fails_with_the_cause(
    small_fs: Path, models_dir: Path
) -> None:
    """A full disk that outlasts the worker's retries ends the job ``failed`` with the
    database's own reason as soon as there is space again, not ``running`` for minutes."""
    settings = job_settings(small_fs, models_dir)
    with TestClient(create_app(settings)) as client:
        job_id = client.post("/train", json=LONG_CNN).json()["id"]
        wait_until(client, job_id, running_with_steps)
        with full_disk(small_fs / "jobs.db"):
            time.sleep(sum(RETRY_DELAYS_S) + 2)  # the fault itself: longer than the retries
        freed = time.monotonic()
        job = wait_until(client, job_id, lambda b: "disk is full" in (b["error"] or ""), 30)
        assert time.monotonic() - freed < 5
    assert job["status"] == "failed"
    assert "database or disk is full" in job["error"]


def test_full_disk_helper_really_fills_the_filesystem(small_fs: Path) -> None:
    """The fault is real: inside ``full_disk`` a plain file write fails with ENOSPC."""
    database = small_fs / "jobs.db"
    sqlite3.connect(database).close()
    with full_disk(database), pytest.raises(OSError, match="No space left") as raised:
        (small_fs / "more").write_bytes(b"x" * 4096)
    assert raised.value.errno == errno.ENOSPC
