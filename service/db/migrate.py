"""Bringing a store to this release's schema: Alembic migrations (``service/db/migrations``)
run under a lock, so that of several processes starting at once one migrates and the others
wait, then find the store current.

The lock is the migrating transaction's own: a transaction-scoped advisory lock on PostgreSQL
(whose DDL is transactional), ``BEGIN IMMEDIATE`` (the database's write lock) on SQLite. A
store created before migrations existed (its tables, no ``alembic_version``) is the baseline:
it is stamped ``0001`` and upgraded in place. A store already at ``HEAD`` is recognised by one
query, without loading Alembic.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import Connection, Engine, func, inspect, select, text

from service.db.engine import make_engine

#: The newest revision in ``service/db/migrations/versions`` (a test keeps them equal).
HEAD = "0002"
#: The revision matching the tables of the releases before migrations.
BASELINE = "0001"
#: What ``current`` says of a store holding the tables of a release before migrations.
UNVERSIONED = "unversioned (created before migrations)"
#: PostgreSQL advisory-lock key serialising migrations ("digidb" in ASCII).
_MIGRATE_LOCK_KEY = 0x646967696462
_SCRIPTS = "service.db:migrations"


class StoreBehind(Exception):
    """The store's schema is older than this release's and automatic migration is off."""


class UnknownRevision(StoreBehind):
    """The store is at a revision this release does not have (made by a newer release)."""


def open_database(url: str, *, auto_migrate: bool = True) -> Engine:
    """An engine on ``url`` whose store is at ``HEAD`` (``prepare``)."""
    engine = make_engine(url)
    try:
        prepare(engine, auto_migrate=auto_migrate)
    except BaseException:
        engine.dispose()
        raise
    return engine


def prepare(engine: Engine, *, auto_migrate: bool = True) -> None:
    """Upgrade the store to ``HEAD`` (``auto_migrate``), or ``StoreBehind`` if it is not."""
    found = current(engine)
    if found == HEAD:
        return
    if not auto_migrate:
        raise StoreBehind(
            f"the database {engine.url.render_as_string()} is at revision {found or '(empty)'}, "
            f"this release needs {HEAD}: run `python -m service db upgrade` (back it up first), "
            "or start with DIGITS_DB_AUTO_MIGRATE=true"
        )
    upgrade(engine)


def current(engine: Engine) -> str | None:
    """The store's revision; ``None`` when it is empty; ``UNVERSIONED`` for a store made by a
    release before migrations."""
    with engine.connect() as conn:
        return _revision(conn)


def upgrade(engine: Engine) -> str:
    """Migrate the store to ``HEAD`` under the migration lock; returns the revision it found
    once it held the lock (``HEAD``: another process had migrated it)."""
    with _locked(engine) as conn:
        found = _revision(conn)
        if found != HEAD:
            _run_alembic(conn, found)
    return found or "(empty)"


def _revision(conn: Connection) -> str | None:
    names = set(inspect(conn).get_table_names())
    if "alembic_version" in names:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return None if version is None else str(version)
    return UNVERSIONED if "jobs" in names else None


@contextlib.contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A transaction that one process at a time holds, committed on exit."""
    with engine.connect().execution_options(immediate=True) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(_MIGRATE_LOCK_KEY)))
        yield conn


def _run_alembic(conn: Connection, found: str | None) -> None:
    # Imported here: a store already at HEAD (every start but the first) never loads Alembic.
    from alembic import command
    from alembic.config import Config
    from alembic.util import CommandError

    config = Config()
    config.set_main_option("script_location", _SCRIPTS)
    config.attributes["connection"] = conn
    try:
        if found == UNVERSIONED:
            command.stamp(config, BASELINE)
        command.upgrade(config, "head")
    except CommandError as exc:
        raise UnknownRevision(
            f"the database is at revision {found}, which this release ({HEAD}) does not know: "
            f"start the release that made it, or restore a backup ({exc})"
        ) from exc


def script_head() -> str | None:
    """The head revision of the migration scripts (for tests and ``db current``)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", _SCRIPTS)
    return ScriptDirectory.from_config(config).get_current_head()
