"""Baseline: the tables as the releases before migrations created them (jobs, job_curve,
model_aliases, alias_moves, model_traffic). A store made by such a release is stamped at this
revision, never re-created.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    _jobs()
    _job_curve()
    _rollout()


def _jobs() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("family", sa.String(16), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("promote", sa.Boolean(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float()),
        sa.Column("finished_at", sa.Float()),
        sa.Column("owner", sa.String(200)),
        sa.Column("worker_pid", sa.Integer()),
        sa.Column("heartbeat_at", sa.Float()),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("cancel_reason", sa.Text()),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("total_iterations", sa.Integer(), nullable=False),
        sa.Column("elapsed", sa.Float()),
        sa.Column("last_loss", sa.Float()),
        sa.Column("metrics", sa.JSON()),
        sa.Column("model_name", sa.String(64)),
        sa.Column("model_version", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="jobs_pkey"),
    )
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_created", "jobs", ["created_at"])


def _job_curve() -> None:
    op.create_table(
        "job_curve",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("first_iteration", sa.Integer(), nullable=False),
        sa.Column("losses", sa.JSON(), nullable=False),
        sa.Column("accuracy", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name="job_curve_job_id_fkey", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("seq", name="job_curve_pkey"),
    )
    op.create_index("ix_job_curve_job", "job_curve", ["job_id", "seq"])


def _rollout() -> None:
    op.create_table(
        "model_aliases",
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("alias", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("model", "alias", name="model_aliases_pkey"),
    )
    op.create_table(
        "alias_moves",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("alias", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("from_version", sa.Integer()),
        sa.Column("to_version", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="alias_moves_pkey"),
    )
    op.create_index("ix_alias_moves_model", "alias_moves", ["model", "seq"])
    op.create_table(
        "model_traffic",
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("weights", sa.JSON(), nullable=False),
        sa.Column("shadow", sa.String(32)),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("model", name="model_traffic_pkey"),
    )


def downgrade() -> None:
    for table in ("model_traffic", "alias_moves", "model_aliases", "job_curve", "jobs"):
        op.drop_table(table)
