"""A job store as the release before migrations (commit 86eda33) made it: that commit's
``service/jobs/tables.py`` below, verbatim from ``from sqlalchemy import`` on (``create_all``
on a fresh ``MetaData``), and rows as its code wrote them: two jobs (one succeeded, with a
curve in two chunks, one failed), the aliases of model ``m``, their history and its traffic."""

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

# --- the rows (a job spec as 86eda33's JobSpec(family="logistic").new_job() wrote it) ----
SPEC = {
    "request": {
        "family": "logistic",
        "members": None,
        "name": None,
        "promote": False,
        "recipe": "default",
        "hyperparameters": {
            "iterations": None,
            "lr": None,
            "momentum": None,
            "optimizer": None,
            "weight_decay": None,
            "schedule": None,
            "batch_size": None,
            "label_smoothing": None,
            "augment_shift": None,
            "acc_step": None,
            "seed": None,
            "hidden": None,
            "depth": None,
            "activation": None,
            "channels": None,
            "dropout": None,
            "input_scale": None,
        },
    },
    "architecture": {
        "family": "logistic",
        "hand_made": False,
        "hidden": 64,
        "depth": 1,
        "activation": "relu",
        "channels": [8],
        "dropout": 0.0,
        "fc_hidden": 0,
        "batch_norm": False,
        "input_scale": 0.0625,
        "label": "logistic (default recipe)",
    },
    "recipe": {
        "iterations": 2000,
        "lr": 0.03,
        "momentum": 0.9,
        "optimizer": "adam",
        "weight_decay": 0.0,
        "schedule": "cosine",
        "batch_size": 64,
        "label_smoothing": 0.0,
        "augment_shift": False,
        "acc_step": 100,
        "seed": 0,
        "warmup": 0,
        "ema_decay": 0.0,
        "augment_rotate": 0.0,
        "swa_start": 0.0,
    },
    "time_limit_s": 3600.0,
    "gate_tolerance": 0.005,
}
T0 = 1_790_000_000.0
JOB = {
    "id": "a" * 32,
    "status": "succeeded",
    "family": "logistic",
    "name": "m",
    "promote": True,
    "spec": SPEC,
    "created_at": T0,
    "started_at": T0 + 1,
    "finished_at": T0 + 9,
    "owner": "host:1:abcd",
    "worker_pid": 1,
    "heartbeat_at": T0 + 9,
    "cancel_requested": False,
    "cancel_reason": None,
    "iteration": 4,
    "total_iterations": 4,
    "elapsed": 8.0,
    "last_loss": 0.25,
    "metrics": {
        "train_accuracy": 0.9,
        "test_accuracy": 0.875,
        "final_loss": 0.25,
        "fit_seconds": 8.0,
        "iterations": 4,
        "test_errors": 45,
    },
    "model_name": "m",
    "model_version": 2,
    "error": None,
}
FAILED = {
    **JOB,
    "id": "b" * 32,
    "status": "failed",
    "promote": False,
    "created_at": T0 + 20,
    "iteration": 0,
    "elapsed": None,
    "last_loss": None,
    "metrics": None,
    "model_name": None,
    "model_version": None,
    "error": "worker lost: the process running this job died or fell silent; resubmit it",
}
CURVE = [
    {"job_id": "a" * 32, "first_iteration": 1, "losses": [2.0, 1.0], "accuracy": []},
    {
        "job_id": "a" * 32,
        "first_iteration": 3,
        "losses": [0.5, 0.25],
        "accuracy": [{"iteration": 4, "train": 0.9, "test": 0.875}],
    },
]
ALIASES = [
    {"model": "m", "alias": "production", "version": 2, "updated_at": T0 + 9},
    {"model": "m", "alias": "staging", "version": 1, "updated_at": T0 + 30},
]
MOVES = [
    {
        "model": "m",
        "alias": "production",
        "kind": "initial",
        "from_version": None,
        "to_version": 1,
        "actor": "service",
        "reason": "the first version of a new model",
        "at": T0,
    },
    {
        "model": "m",
        "alias": "production",
        "kind": "promote",
        "from_version": 1,
        "to_version": 2,
        "actor": "job:" + "a" * 32,
        "reason": "job aaaa: validation accuracy 0.9 vs 0.8 of version 1",
        "at": T0 + 9,
    },
    {
        "model": "m",
        "alias": "staging",
        "kind": "move",
        "from_version": None,
        "to_version": 1,
        "actor": "admin:0123abcd",
        "reason": "keep v1 warm",
        "at": T0 + 30,
    },
]
TRAFFIC = [
    {
        "model": "m",
        "weights": {"production": 90, "staging": 10},
        "shadow": "staging",
        "updated_at": T0 + 40,
    }
]


def build(url: str) -> None:
    """Create the store at ``url`` with 86eda33's ``create_all`` and write the rows."""
    from sqlalchemy import create_engine, insert

    engine = create_engine(url)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(insert(jobs_table), [JOB, FAILED])
            conn.execute(insert(curve_table), CURVE)
            conn.execute(insert(aliases_table), ALIASES)
            conn.execute(insert(moves_table), MOVES)
            conn.execute(insert(traffic_table), TRAFFIC)
    finally:
        engine.dispose()
