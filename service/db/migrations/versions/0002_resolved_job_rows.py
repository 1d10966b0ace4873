"""Job rows in the typed form: ``jobs.spec`` as ``ResolvedJob`` writes it.

Rows queued before the typed job kept the request body under ``request`` and the resolved
recipe under ``recipe``; they are rewritten once here (the model's name, family, promote
flag and recipe preset from the request, the resolved recipe as ``hyperparameters``), so the
code reads one form only. No column changes.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_jobs = sa.table("jobs", sa.column("id", sa.String(32)), sa.column("spec", sa.JSON()))


def resolved(spec: dict[str, Any]) -> dict[str, Any]:
    """The typed form of a spec written before it (a typed one is returned as it is)."""
    if "request" not in spec:
        return spec
    request, rest = spec["request"], {k: v for k, v in spec.items() if k != "request"}
    return {
        **rest,
        "family": request["family"],
        "name": request.get("name") or request["family"],
        "promote": request.get("promote", False),
        "recipe": request.get("recipe", "default"),
        "hyperparameters": spec["recipe"],
    }


def upgrade() -> None:
    conn = op.get_bind()
    # Only the ids of the candidates are held (a store may keep many jobs), then row by row.
    older = sa.select(_jobs.c.id).where(sa.cast(_jobs.c.spec, sa.Text).like('%"request"%'))
    for job_id in conn.execute(older).scalars().all():
        spec = conn.execute(sa.select(_jobs.c.spec).where(_jobs.c.id == job_id)).scalar_one()
        if isinstance(spec, dict) and "request" in spec:
            conn.execute(sa.update(_jobs).where(_jobs.c.id == job_id).values(spec=resolved(spec)))


def downgrade() -> None:
    """Nothing: a release at 0001 that reads the typed form reads these rows as they are."""
