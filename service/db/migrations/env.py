"""Alembic's environment: runs the migrations on the connection it is handed
(``service.db.migrate``), or on the URL it is given (``sqlalchemy.url``). Migrations are
written by hand (no autogenerate target): each one is a frozen copy of the change, never an
import of today's tables."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from service.db.engine import make_engine


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url, or migrate with `python -m service db upgrade`")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()
