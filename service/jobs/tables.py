"""The SQL tables of the job store (SQLAlchemy Core, portable between SQLite and PostgreSQL)::

jobs            one row per job: spec, status, owner, worker pid, progress, result
job_curve       the curves, appended in chunks (one row per progress write), so a
                progress write is an INSERT of the new points, never a rewrite

They are defined on the one ``MetaData`` (``service/db``), beside rollout's tables
(``service/rollout/tables.py``); schema changes are migrations (``service/db/migrations``).
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Float, ForeignKey, Index, Integer, String, Table, Text

from service.db import metadata

jobs_table = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("status", String(16), nullable=False, index=True),
    Column("family", String(16), nullable=False),
    Column("name", String(64), nullable=False),
    Column("promote", Boolean, nullable=False, default=False),
    Column("spec", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    #: Who claimed the job: ``host:pid:token`` of the API process (local) or worker (celery).
    Column("owner", String(200)),
    Column("worker_pid", Integer),
    Column("heartbeat_at", Float),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    #: Why a stop was requested when it is not a user's cancel (then the job ends failed).
    Column("cancel_reason", Text),
    Column("iteration", Integer, nullable=False, default=0),
    Column("total_iterations", Integer, nullable=False),
    Column("elapsed", Float),
    Column("last_loss", Float),
    Column("metrics", JSON),
    Column("model_name", String(64)),
    Column("model_version", Integer),
    Column("error", Text),
)
Index("ix_jobs_created", jobs_table.c.created_at)

curve_table = Table(
    "job_curve",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(32), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    #: Iteration of the first loss in ``losses``.
    Column("first_iteration", Integer, nullable=False),
    Column("losses", JSON, nullable=False),
    #: ``[{"iteration", "train", "test"}, ...]`` recorded in the same span.
    Column("accuracy", JSON, nullable=False),
)
Index("ix_job_curve_job", curve_table.c.job_id, curve_table.c.seq)
