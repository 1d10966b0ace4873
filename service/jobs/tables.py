"""The SQL tables of the job store (SQLAlchemy Core, portable between SQLite and PostgreSQL)::

jobs            one row per job: spec, status, owner, worker pid, progress, result
job_curve       the curves, appended in chunks (one row per progress write), so a
                progress write is an INSERT of the new points, never a rewrite
model_aliases   which version each alias of a model names (``production``, ``staging``, ...)
alias_moves     every move of an alias: when, who (a key's id), from, to, why
model_traffic   per model, the canary weights over its aliases and the shadow alias

The alias tables live beside the jobs so that every API replica sharing the database agrees
on which version answers (``service/rollout/aliases.py``).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

metadata = MetaData()

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

aliases_table = Table(
    "model_aliases",
    metadata,
    Column("model", String(64), nullable=False),
    Column("alias", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
    PrimaryKeyConstraint("model", "alias"),
)

moves_table = Table(
    "alias_moves",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("model", String(64), nullable=False),
    Column("alias", String(32), nullable=False),
    #: ``initial`` (a model's first production), ``move``, ``promote`` (a job), ``rollback``.
    Column("kind", String(16), nullable=False),
    Column("from_version", Integer),
    Column("to_version", Integer, nullable=False),
    #: Who moved it: the id of the key (role and a sha256 prefix), never the key; or a job.
    Column("actor", String(80), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", Float, nullable=False),
)
Index("ix_alias_moves_model", moves_table.c.model, moves_table.c.seq)

traffic_table = Table(
    "model_traffic",
    metadata,
    Column("model", String(64), primary_key=True),
    #: ``{"production": 90, "staging": 10}``; empty: every unpinned request to production.
    Column("weights", JSON, nullable=False),
    Column("shadow", String(32)),
    Column("updated_at", Float, nullable=False),
)
