"""The SQL tables of rollout, on the one ``MetaData`` (``service/db``)::

model_aliases   which version each alias of a model names (``production``, ``staging``, ...)
alias_moves     every decision on an alias: a move (when, who, from, to, why) or a gated
                promotion the gate refused (kind ``refused``: the alias did not move)
model_traffic   per model, the canary weights over its aliases and the shadow alias

They live in the one database so that every API replica agrees on which version answers.
Schema changes are migrations (``service/db/migrations``).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from service.db import metadata

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
    #: ``initial`` (a model's first production), ``move``, ``promote`` (a job), ``rollback``,
    #: ``refused`` (a gated promotion the gate refused: ``to_version`` is the candidate).
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
