"""The databases the store tests run on: a SQLite file, and a fresh schema of the local
PostgreSQL ``test`` database (skipped with the reason when it is unreachable, failed under
``CI=true``), carried by the URL as the connection's ``search_path`` so worker processes that
get only the URL use it too."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

PG_ADMIN_URL = os.environ.get("DIGITS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

#: ``params`` of a fixture that yields a database URL for each backend.
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]


@contextlib.contextmanager
def database_url(backend: str, tmp: Path) -> Iterator[str]:
    """A SQLAlchemy URL of an empty database of ``backend`` (dropped afterwards)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / f'rollout-{uuid.uuid4().hex[:8]}.db'}"
        return
    with postgres_schema_url("rollout_test") as url:
        yield url


@contextlib.contextmanager
def postgres_schema_url(prefix: str) -> Iterator[str]:
    """A SQLAlchemy URL on a fresh schema ``<prefix>_<random>`` of the local PostgreSQL
    ``test`` database, dropped afterwards."""
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required when CI=true: {exc}")
        pytest.skip(f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {exc}")
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    base = PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()
