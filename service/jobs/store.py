"""The persistent job store: ``JobStore(engine)`` on the one database (``service/db``).

Every method is a short synchronous transaction (the API calls them in a thread). Transitions
are conditional ``UPDATE``s whose row count says whether they happened: ``queued -> running``
for exactly one claimant, and progress and finish writes only while the caller owns the
running job, so a job declared lost is never resurrected by a late worker (docs/train.md,
"Exactly once"). The liveness sweeper is ``liveness.fail_stalled``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from service.db import open_database
from service.errors import JobNotCancellable, JobNotFound
from service.jobs.records import Curve, JobRecord, JobStatus, ResolvedJob
from service.jobs.tables import curve_table, jobs_table

#: PostgreSQL advisory-lock key serialising submissions, so the queue bound holds across
#: processes ("digitq" in ASCII).
_SUBMIT_LOCK_KEY = 0x646967697471


class JobStore:
    """Jobs and their curves in SQL, on the process's one engine (``service/db``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: The database's URL, for the worker processes that open their own engine on it.
        self.url = engine.url.render_as_string(hide_password=False)

    @classmethod
    def open(cls, url: str) -> JobStore:
        """A store on its own engine at ``url``, migrated (``open_database``); ``close`` it."""
        return cls(open_database(url))

    def close(self) -> None:
        """Dispose of the engine (a store made by ``open``; the app's lifespan owns its own)."""
        self.engine.dispose()

    # --- API side ----------------------------------------------------------------------

    def create(self, job: ResolvedJob, *, max_queued: int | None = None) -> JobRecord | None:
        """Insert ``job``, ``queued``; ``None`` when ``max_queued`` jobs are already waiting.

        The count and the insert are one critical section across threads and processes:
        under a transaction-scoped advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` (the
        database's write lock) on SQLite.
        """
        job_id = uuid.uuid4().hex
        with self.engine.connect().execution_options(immediate=True) as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(_SUBMIT_LOCK_KEY)))
            if max_queued is not None:
                waiting = conn.execute(
                    select(func.count()).where(jobs_table.c.status == JobStatus.QUEUED)
                ).scalar_one()
                if waiting >= max_queued:
                    return None
            conn.execute(
                insert(jobs_table).values(
                    id=job_id,
                    status=JobStatus.QUEUED,
                    family=job.family,
                    name=job.name,
                    promote=job.promote,
                    spec=job.model_dump(mode="json"),
                    created_at=time.time(),
                    cancel_requested=False,
                    iteration=0,
                    total_iterations=job.total_iterations,
                )
            )
        return self.get(job_id)

    def get(self, job_id: str) -> JobRecord:
        """The job ``job_id``; ``JobNotFound`` if there is none."""
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs_table).where(jobs_table.c.id == job_id)).first()
        if row is None:
            raise JobNotFound(f"no training job {job_id!r}", expected="an id from GET /train")
        return JobRecord.from_row(row)

    def list_jobs(
        self, *, status: JobStatus | None = None, limit: int = 20, offset: int = 0
    ) -> tuple[list[JobRecord], int]:
        """Jobs newest first (one page), and how many match in all."""
        where = [] if status is None else [jobs_table.c.status == status]
        query = (
            select(jobs_table)
            .where(*where)
            .order_by(jobs_table.c.created_at.desc(), jobs_table.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            count = select(func.count()).select_from(jobs_table).where(*where)
            total = conn.execute(count).scalar_one()
        return [JobRecord.from_row(r) for r in rows], int(total)

    def counts(self) -> dict[JobStatus, int]:
        """Number of jobs in each status."""
        query = select(jobs_table.c.status, func.count()).group_by(jobs_table.c.status)
        with self.engine.connect() as conn:
            found = {JobStatus(s): int(n) for s, n in conn.execute(query).all()}
        return {s: found.get(s, 0) for s in JobStatus}

    def curve(self, job_id: str, *, after_seq: int = 0) -> Curve:
        """The curve chunks of ``job_id`` written after chunk ``after_seq``, joined."""
        query = (
            select(curve_table.c.seq, curve_table.c.losses, curve_table.c.accuracy)
            .where(curve_table.c.job_id == job_id, curve_table.c.seq > after_seq)
            .order_by(curve_table.c.seq)
        )
        curve = Curve(last_seq=after_seq)
        with self.engine.connect() as conn:
            for seq, losses, accuracy in conn.execute(query):
                curve.extend(losses, accuracy, seq)
        return curve

    def request_cancel(self, job_id: str, *, reason: str | None = None) -> JobRecord:
        """Cancel a queued job at once, or ask a running one to stop.

        ``reason`` ``None`` is a user's cancel (the job ends ``cancelled``); any other reason
        makes the job end ``failed`` with it (used when the service shuts down).
        ``JobNotCancellable`` for a finished job.
        """
        with self.engine.begin() as conn:
            queued = conn.execute(
                update(jobs_table)
                .where(jobs_table.c.id == job_id, jobs_table.c.status == JobStatus.QUEUED)
                .values(
                    status=JobStatus.CANCELLED if reason is None else JobStatus.FAILED,
                    error=reason,
                    cancel_requested=True,
                    finished_at=time.time(),
                )
            ).rowcount
            if not queued:
                conn.execute(
                    update(jobs_table)
                    .where(jobs_table.c.id == job_id, jobs_table.c.status == JobStatus.RUNNING)
                    .values(cancel_requested=True, cancel_reason=reason)
                )
        job = self.get(job_id)
        if job.status.finished and not queued:
            raise JobNotCancellable(
                f"job {job_id} already ended {job.status}",
                expected="a queued or running job",
            )
        return job

    # --- worker side -------------------------------------------------------------------

    def claim_next(self, owner: str) -> str | None:
        """Claim the oldest queued job for ``owner``; ``None`` when nothing is queued (or ten
        claims in a row lost their race: the next round tries again)."""
        c = jobs_table.c
        oldest = select(c.id).where(c.status == JobStatus.QUEUED)
        oldest = oldest.order_by(c.created_at, c.id).limit(1)
        for _attempt in range(10):
            with self.engine.connect() as conn:
                job_id = conn.execute(oldest).scalar()
            if job_id is None or self.claim(job_id, owner):
                return job_id
        return None

    def claim(self, job_id: str, owner: str) -> bool:
        """``queued -> running`` for ``owner``; ``False`` if another claimant was first."""
        now = time.time()
        with self.engine.begin() as conn:
            claimed = conn.execute(
                update(jobs_table)
                .where(jobs_table.c.id == job_id, jobs_table.c.status == JobStatus.QUEUED)
                .values(status=JobStatus.RUNNING, owner=owner, started_at=now, heartbeat_at=now)
            ).rowcount
        return claimed == 1

    def start(self, job_id: str, owner: str, pid: int) -> JobRecord | None:
        """Begin running ``job_id`` in process ``pid``: claim it if it is still queued, go
        on if ``owner`` already holds it; ``None`` if it is not ``owner``'s to run. The
        time limit counts from here (not from a claim waiting for a worker to start). The
        total is this release's count of the job's steps (a row queued by an older release
        counted one fit, not six)."""
        self.claim(job_id, owner)
        now, total = time.time(), self.get(job_id).spec.total_iterations
        with self.engine.begin() as conn:
            mine = conn.execute(
                update(jobs_table)
                .where(*self._held(job_id, owner))
                .values(worker_pid=pid, started_at=now, heartbeat_at=now, total_iterations=total)
            ).rowcount
        return self.get(job_id) if mine else None

    def record_progress(
        self,
        job_id: str,
        owner: str,
        *,
        iteration: int,
        elapsed: float,
        losses: Sequence[float],
        accuracy: Sequence[dict[str, float]],
    ) -> tuple[bool, str | None]:
        """Append the new curve points and the progress; returns ``(stop, reason)``: stop
        when a cancel was requested or the job is no longer ``owner``'s running job."""
        with self.engine.begin() as conn:
            held = conn.execute(
                update(jobs_table)
                .where(*self._held(job_id, owner))
                .values(
                    iteration=iteration,
                    elapsed=elapsed,
                    last_loss=losses[-1] if losses else None,
                    heartbeat_at=time.time(),
                )
            ).rowcount
            if not held:
                return True, "the job is no longer held by this worker"
            if losses or accuracy:
                conn.execute(
                    insert(curve_table).values(
                        job_id=job_id,
                        first_iteration=iteration - len(losses) + 1,
                        losses=list(losses),
                        accuracy=list(accuracy),
                    )
                )
            flag, reason = conn.execute(
                select(jobs_table.c.cancel_requested, jobs_table.c.cancel_reason).where(
                    jobs_table.c.id == job_id
                )
            ).one()
        return bool(flag), reason

    def finish(
        self,
        job_id: str,
        owner: str,
        status: JobStatus,
        *,
        metrics: dict[str, Any] | None = None,
        model: tuple[str, int] | None = None,
        error: str | None = None,
    ) -> bool:
        """End ``owner``'s running job with ``status``; ``False`` if it was not held."""
        values: dict[str, Any] = {"status": status, "finished_at": time.time(), "error": error}
        if metrics is not None:
            values["metrics"] = metrics
        if model is not None:
            values["model_name"], values["model_version"] = model
        with self.engine.begin() as conn:
            done = conn.execute(
                update(jobs_table).where(*self._held(job_id, owner)).values(**values)
            ).rowcount
        return done == 1

    @staticmethod
    def _held(job_id: str, owner: str) -> list[Any]:
        return [
            jobs_table.c.id == job_id,
            jobs_table.c.status == JobStatus.RUNNING,
            jobs_table.c.owner == owner,
        ]
