"""The one database: its engine, its ``MetaData`` and its migrations.

``make_engine(url)`` builds the engine (one per process: the app's lifespan, a worker process
or a Celery worker); ``metadata`` is the one ``MetaData`` every table is defined on (the job
tables in ``service/jobs/tables.py``, the rollout tables in ``service/rollout/tables.py``);
``open_database(url)`` is ``make_engine`` plus ``prepare``: the store brought to this release's
schema (Alembic, ``service/db/migrations``) under a lock, or ``StoreBehind`` when automatic
migration is off. ``python -m service db upgrade|current`` runs the same from a shell.
"""

from __future__ import annotations

from service.db.engine import make_engine, metadata
from service.db.migrate import HEAD, StoreBehind, current, open_database, prepare, upgrade

__all__ = [
    "HEAD",
    "StoreBehind",
    "current",
    "make_engine",
    "metadata",
    "open_database",
    "prepare",
    "upgrade",
]
