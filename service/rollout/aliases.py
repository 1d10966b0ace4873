"""Aliases of model versions (``production``, ``staging``, ...), every move of them, and each
model's traffic settings, kept in the one database so every API replica agrees.

``AliasStore(engine)`` is plain SQL (SQLAlchemy Core, the tables in ``service/rollout/tables.py``)
and knows nothing about HTTP or what is on disk. Every write is one transaction serialised
across processes (a transaction-scoped advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite), so concurrent moves from several API processes end in one consistent state: the
alias names the ``to`` of its last recorded move, and each move's ``from`` is the ``to`` of the
move before it. A move to the version an alias already names changes and records nothing.
A move may be conditional (``expect``: the versions the caller checked the aliases at), which
is how a gated promotion (``service/rollout/promotion.py``) is a compare-and-set.

Rollback undoes moves in order: the moves of an alias form a stack (each pushes the version it
left, each rollback pops one), so 1 -> 2 -> 3 rolls back to 2, then to 1.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from service.db import open_database
from service.errors import NothingToRollBack, VersionNotFound
from service.rollout.names import (
    ALIAS_PATTERN,
    ALIAS_SCHEMA_PATTERN,
    PRODUCTION,
    RESERVED,
    Routing,
    check_alias_name,
    pick_alias,
)
from service.rollout.tables import aliases_table, moves_table, traffic_table

#: The names that are ``service.rollout.names``'s, importable from here as before.
__all__ = [
    "ALIAS_PATTERN",
    "ALIAS_SCHEMA_PATTERN",
    "PRODUCTION",
    "REFUSED",
    "RESERVED",
    "AliasMoved",
    "AliasStore",
    "Move",
    "MoveResult",
    "Routing",
    "check_alias_name",
    "pick_alias",
]

#: The kind of a history row that records a gate's refusal (the alias did not move).
REFUSED = "refused"
#: PostgreSQL advisory-lock key serialising alias and traffic writes ("digia" in ASCII).
_ALIAS_LOCK_KEY = 0x6469676961


@dataclass(frozen=True)
class Move:
    """One recorded move of an alias."""

    seq: int
    model: str
    alias: str
    kind: str  # initial | move | promote | rollback | refused
    from_version: int | None
    to_version: int
    actor: str
    reason: str
    at: float


@dataclass(frozen=True)
class MoveResult:
    """What a move did: the version before, the version now, and whether it changed."""

    alias: str
    previous: int | None
    version: int
    moved: bool


class AliasStore:
    """Aliases, their moves and traffic settings in SQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> AliasStore:
        """A store on its own engine at ``url``, migrated (``open_database``); ``close`` it."""
        return cls(open_database(url))

    def close(self) -> None:
        """Dispose of the engine (a store made by ``open``; the app's lifespan owns its own)."""
        self.engine.dispose()

    def aliases(self, model: str) -> dict[str, int]:
        """The aliases of ``model`` and the versions they name."""
        query = select(aliases_table.c.alias, aliases_table.c.version).where(
            aliases_table.c.model == model
        )
        with self.engine.connect() as conn:
            return {alias: int(version) for alias, version in conn.execute(query)}

    def routing(self) -> dict[str, Routing]:
        """Every model's aliases and traffic settings."""
        aliases: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for model, alias, version in conn.execute(
                select(aliases_table.c.model, aliases_table.c.alias, aliases_table.c.version)
            ):
                aliases.setdefault(model, {})[alias] = int(version)
            traffic = {
                model: (dict(weights or {}), shadow)
                for model, weights, shadow in conn.execute(
                    select(traffic_table.c.model, traffic_table.c.weights, traffic_table.c.shadow)
                )
            }
        return {
            model: Routing(aliases.get(model, {}), *traffic.get(model, ({}, None)))
            for model in aliases.keys() | traffic.keys()
        }

    def ensure_production(self, model: str, version: int, reason: str) -> bool:
        """Make ``version`` the ``production`` of ``model`` if it has none yet (its first
        version); ``False`` when it already had one."""
        with self._write() as conn:
            if self._current(conn, model, PRODUCTION) is not None:
                return False
            self._set(conn, model, PRODUCTION, None, version, "initial", "service", reason)
        return True

    def move(
        self,
        model: str,
        alias: str,
        version: int,
        *,
        actor: str,
        reason: str,
        kind: str = "move",
        expect: Mapping[str, int | None] | None = None,
    ) -> MoveResult:
        """Point ``alias`` of ``model`` at ``version`` and record it (nothing when it already
        does). ``expect``: move only if each alias it names still names that version (``None``:
        none), else ``AliasMoved``. Kind ``refused`` records a gate's refusal of ``version``
        and leaves the alias where it is."""
        with self._write() as conn:
            self._check(conn, model, expect or {})
            current = self._current(conn, model, alias)
            if current == version and kind != REFUSED:
                return MoveResult(alias, current, version, moved=False)
            self._set(conn, model, alias, current, version, kind, actor, reason)
        return MoveResult(alias, current, version, moved=kind != REFUSED)

    def rollback(
        self, model: str, alias: str, *, actor: str, reason: str, available: Collection[int]
    ) -> MoveResult:
        """Move ``alias`` back to the version it named before its last (not undone) move.

        ``NothingToRollBack`` when no move is left to undo; ``VersionNotFound`` when that
        version is no longer among ``available``.
        """
        with self._write() as conn:
            current = self._current(conn, model, alias)
            target = self._previous(conn, model, alias, current)
            if current is None or target is None:
                raise NothingToRollBack(
                    f"{model} {alias} has no earlier version to roll back to",
                    expected=f"a move of {alias} first (PUT /models/{model}/aliases/{alias})",
                )
            if target not in available:
                listed = ", ".join(str(v) for v in sorted(available)) or "(none)"
                raise VersionNotFound(
                    f"{model} {alias} would roll back to version {target}, which is not served",
                    expected=f"move it to one of: {listed}",
                )
            self._set(conn, model, alias, current, target, "rollback", actor, reason)
        return MoveResult(alias, current, target, moved=True)

    def history(self, model: str, alias: str | None = None, limit: int = 100) -> list[Move]:
        """The moves of ``model`` (of ``alias`` only, if given), newest first."""
        where = [moves_table.c.model == model]
        if alias is not None:
            where.append(moves_table.c.alias == alias)
        query = select(moves_table).where(*where).order_by(moves_table.c.seq.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [Move(**row._mapping) for row in conn.execute(query)]

    def set_traffic(self, model: str, weights: dict[str, int], shadow: str | None) -> None:
        """Store the canary weights (empty: all to production) and shadow alias of ``model``."""
        values: dict[str, Any] = {"weights": weights, "shadow": shadow, "updated_at": time.time()}
        with self._write() as conn:
            done = conn.execute(
                update(traffic_table).where(traffic_table.c.model == model).values(**values)
            ).rowcount
            if not done:
                conn.execute(insert(traffic_table).values(model=model, **values))

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        """A connection in a write transaction that one process at a time holds (PostgreSQL:
        an advisory lock; SQLite: ``BEGIN IMMEDIATE``), committed on exit."""
        with self.engine.connect().execution_options(immediate=True) as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(_ALIAS_LOCK_KEY)))
            yield conn

    @classmethod
    def _check(cls, conn: Connection, model: str, expect: Mapping[str, int | None]) -> None:
        for alias, expected in expect.items():
            found = cls._current(conn, model, alias)
            if found != expected:
                raise AliasMoved(f"{model} {alias} is now {found}, not {expected}")

    @staticmethod
    def _current(conn: Connection, model: str, alias: str) -> int | None:
        version = conn.execute(
            select(aliases_table.c.version).where(
                aliases_table.c.model == model, aliases_table.c.alias == alias
            )
        ).scalar()
        return None if version is None else int(version)

    @staticmethod
    def _previous(conn: Connection, model: str, alias: str, current: int | None) -> int | None:
        rows = conn.execute(
            select(moves_table.c.kind, moves_table.c.from_version)
            .where(
                moves_table.c.model == model,
                moves_table.c.alias == alias,
                moves_table.c.kind != REFUSED,
            )
            .order_by(moves_table.c.seq)
        ).all()
        stack: list[int] = []
        for kind, from_version in rows:
            if kind == "rollback":
                if stack:
                    stack.pop()
            elif from_version is not None:
                stack.append(int(from_version))
        while stack and stack[-1] == current:
            stack.pop()
        return stack[-1] if stack else None

    @staticmethod
    def _set(
        conn: Connection,
        model: str,
        alias: str,
        current: int | None,
        version: int,
        kind: str,
        actor: str,
        reason: str,
    ) -> None:
        """Point the alias at ``version`` (not for a refusal) and record the decision."""
        now = time.time()
        if kind == REFUSED:
            pass
        elif current is None:
            conn.execute(
                insert(aliases_table).values(
                    model=model, alias=alias, version=version, updated_at=now
                )
            )
        else:
            conn.execute(
                update(aliases_table)
                .where(aliases_table.c.model == model, aliases_table.c.alias == alias)
                .values(version=version, updated_at=now)
            )
        conn.execute(
            insert(moves_table).values(
                model=model, alias=alias, kind=kind, from_version=current, to_version=version,
                actor=actor, reason=reason, at=now,
            )
        )  # fmt: skip


class AliasMoved(Exception):
    """The alias no longer names the version a conditional move expected."""
