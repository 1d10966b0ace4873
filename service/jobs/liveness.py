"""The liveness rule of jobs: what makes a ``running`` job lost, and the sweeper that fails it.

Liveness is progress: ``heartbeat_at`` is the job's last progress, written when it is
claimed and started and by every progress write of its fit (``JobStore.record_progress``),
never by a timer. ``fail_stalled`` (the one sweeper, run by every API process's ``Jobs``)
ends ``failed`` a ``running`` job with no progress for ``job_stall_s`` seconds, or running
longer than its ``time_limit_s`` plus ``KILL_GRACE_S``; the launcher then kills its process.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from typing import Any

from sqlalchemy import Engine, select, update

from service.jobs.records import JobStatus, ResolvedJob
from service.jobs.tables import jobs_table

#: Seconds between two sweeps (``fail_stalled``) in every API process.
SWEEP_INTERVAL_S = 2.0
#: Seconds past its time limit a job still running is failed and killed: the fit stops
#: itself at the limit (between steps), this catches one that cannot.
KILL_GRACE_S = 10.0
#: The error of a job whose worker process died.
WORKER_LOST = "worker lost: the process running this job died; resubmit it"


def new_owner() -> str:
    """A claimant id, ``host:pid:token``: unique per claimant, a label for people (never
    parsed: liveness is the job's progress alone)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def overdue(job: Any, now: float, stall_s: float) -> str | None:
    """Why the running ``job`` (``heartbeat_at``, ``started_at``, ``spec``) must be failed
    now, or ``None``."""
    quiet = now - (job.heartbeat_at or job.started_at or now)
    if quiet > stall_s:
        return (
            f"no progress for {quiet:.0f} s (job_stall_s = {stall_s:g}): the process running "
            "this job hung, was stopped or died, and was killed; resubmit it"
        )
    limit = ResolvedJob.model_validate(job.spec).time_limit_s
    ran = now - (job.started_at or now)
    if limit is not None and ran > limit + KILL_GRACE_S:
        return (
            f"time limit: the job ran {ran:.0f} s, over job_time_limit_s = {limit:g} s, "
            "and its process was killed"
        )
    return None


def fail_stalled(engine: Engine, stall_s: float) -> list[str]:
    """Fail the running jobs with no progress for ``stall_s`` seconds or over their time
    limit (see ``overdue``); returns their ids, whose processes are to be killed."""
    c = jobs_table.c
    now = time.time()
    failed = []
    with engine.begin() as conn:
        running = conn.execute(
            select(c.id, c.heartbeat_at, c.started_at, c.spec).where(c.status == JobStatus.RUNNING)
        ).all()
        for job in running:
            error = overdue(job, now, stall_s)
            if (
                error is not None
                and conn.execute(
                    update(jobs_table)
                    .where(c.id == job.id, c.status == JobStatus.RUNNING)
                    .where(c.heartbeat_at == job.heartbeat_at)  # no progress since read
                    .values(status=JobStatus.FAILED, error=error, finished_at=now)
                ).rowcount
            ):
                failed.append(str(job.id))
    return failed
