"""Rollout: move a model's aliases (``PUT /models/{name}/aliases/{alias}``), roll one back
(``POST .../aliases/{alias}/rollback``), read every move (``GET /models/{name}/history``) and
split or shadow its traffic (``PUT /models/{name}/traffic``).

Moves are stored in the job store's database (``service/rollout/aliases.py``); this process serves
them at once (a registry refresh), other replicas within ``DIGITS_RELOAD_INTERVAL_S``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from service.errors import GateRefused, InvalidInput
from service.http.deps import AliasesDep, DataPlaneDep, RegistryDep, SettingsDep
from service.http.numbers import PLAIN
from service.http.policy import ADMIN, READ, needs
from service.http.request_log import ACTOR, ANONYMOUS
from service.inference.validation import stored_accuracy
from service.rollout.aliases import ALIAS_SCHEMA_PATTERN, Move, MoveResult, check_alias_name
from service.rollout.gate import Gate, Verdict
from service.rollout.promotion import ANY, promote

router = APIRouter(prefix="/models", tags=["rollout"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such model, version or alias; lists those that exist"}
}
#: What a move answers besides: the alias moved meanwhile, the model cannot serve now.
_MOVE: dict[int | str, dict[str, Any]] = {
    **_NOT_FOUND,
    409: {"description": "`expect` is not what the alias names now, or it kept moving"},
    503: {"description": "the model is unloaded or not ready (`Retry-After`)"},
}

#: An alias in a path: the schema states the rule; the route checks it (``check_alias_name``)
#: so that a bad name gets the service's own message.
AliasName = Annotated[str, Path(json_schema_extra={"pattern": ALIAS_SCHEMA_PATTERN})]


class AliasMoveRequest(BaseModel):
    """Point an alias at a version."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"version": 2, "reason": "retrained", "gate": True}]},
    )

    version: int = Field(ge=1, strict=True)
    reason: str = Field(min_length=1, max_length=500, description="why (kept in the history)")
    gate: bool = Field(
        default=False,
        strict=True,
        description="refuse (409) unless the version's validation accuracy is at least "
        "production's minus DIGITS_GATE_TOLERANCE",
    )
    expect: int | None = Field(
        default=None,
        ge=1,
        strict=True,
        description="move only if the alias names this version now, else 409 alias_changed "
        "(a compare-and-set for a client that checked it first)",
    )


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="rollback", min_length=1, max_length=500)


class AliasMoveView(BaseModel):
    """What a move did; ``moved`` is false when the alias already named the version."""

    model: str
    alias: str
    version: int
    previous: int | None
    moved: bool
    gate: dict[str, Any] | None = Field(description="the gate's figures, when it was asked")


class HistoryEntry(BaseModel):
    at: datetime
    alias: str
    kind: str = Field(description="initial | move | promote | rollback")
    from_version: int | None
    to_version: int
    actor: str = Field(
        description="name of the key that moved it (DIGITS_ADMIN_API_KEY_NAME) or job:<id>"
    )
    reason: str


class History(BaseModel):
    model: str
    moves: list[HistoryEntry] = Field(description="newest first")


class TrafficView(BaseModel):
    model: str
    weights: dict[str, int]
    shadow: str | None


@router.put("/{name}/aliases/{alias}", summary="Move an alias", responses=_MOVE)
@needs(ADMIN)
async def move_alias(
    name: str,
    alias: AliasName,
    body: AliasMoveRequest,
    request: Request,
    registry: RegistryDep,
    aliases: AliasesDep,
    dataplane: DataPlaneDep,
    settings: SettingsDep,
) -> AliasMoveView:
    """Point ``alias`` of model ``name`` at ``version`` (idempotent), optionally gated."""
    check_alias_name(alias)
    registry.get(name, body.version)  # 404 naming the versions that exist
    gate = None
    if body.gate:
        gate = Gate(stored_accuracy(registry.repository, name), settings.gate_tolerance)
    expect = ANY if body.expect is None else body.expect
    outcome = await asyncio.to_thread(
        promote, aliases, name, body.version, alias, gate, _actor(request), expect,
        reason=body.reason,
    )  # fmt: skip
    if outcome.result is None:
        await dataplane.refresh()  # the refusal is in the history
        verdict = outcome.verdict
        assert verdict is not None  # only a gate refuses
        raise GateRefused(
            f"version {body.version} of {name} refused: {verdict.explain()}",
            expected="a version at least as accurate, or the move without the gate",
            gate=verdict.as_dict(),
        )
    await dataplane.refresh()
    return _view(name, outcome.result, outcome.verdict)


_ROLLBACK_EXAMPLES = {"reason": {"value": {"reason": "v3 misreads 7s as 1s in the field"}}}


@router.post(
    "/{name}/aliases/{alias}/rollback",
    summary="Move an alias back to its previous version",
    responses={**_MOVE, 409: {"description": "no earlier version to roll back to"}},
)
@needs(ADMIN)
async def rollback_alias(
    name: str,
    alias: AliasName,
    request: Request,
    registry: RegistryDep,
    aliases: AliasesDep,
    dataplane: DataPlaneDep,
    body: Annotated[RollbackRequest | None, Body(openapi_examples=_ROLLBACK_EXAMPLES)] = None,
) -> AliasMoveView:
    """Undo the last move of ``alias`` (repeatable: 1 -> 2 -> 3 rolls back to 2, then 1)."""
    check_alias_name(alias)
    available = [m.version for m in registry.versions(name)]
    reason = (body or RollbackRequest()).reason
    result = await asyncio.to_thread(
        aliases.rollback, name, alias, actor=_actor(request), reason=reason, available=available
    )
    await dataplane.refresh()
    return _view(name, result, None)


@router.get("/{name}/history", summary="Every move of a model's aliases", responses=_NOT_FOUND)
@needs(READ)
async def history(
    name: str,
    registry: RegistryDep,
    aliases: AliasesDep,
    alias: Annotated[str | None, Query(description="only this alias's moves")] = None,
    limit: Annotated[int, Query(ge=1, le=1000), PLAIN] = 100,
) -> History:
    """When, who (a key's id, never the key), from, to and why, newest first."""
    registry.state(name)  # 404 naming the models that exist
    moves: list[Move] = await asyncio.to_thread(aliases.history, name, alias, limit)
    return History(
        model=name,
        moves=[
            HistoryEntry(
                at=datetime.fromtimestamp(m.at, UTC),
                alias=m.alias,
                kind=m.kind,
                from_version=m.from_version,
                to_version=m.to_version,
                actor=m.actor,
                reason=m.reason,
            )
            for m in moves
        ],
    )


_TRAFFIC_EXAMPLES = {
    "canary": {"value": {"production": 90, "staging": 10}},
    "shadow": {"value": {"shadow": "staging"}},
    "reset": {"value": {}},
}


@router.put(
    "/{name}/traffic",
    summary="Split or shadow a model's unpinned traffic",
    responses={
        **_NOT_FOUND,
        422: {"description": "bad weights or an unknown alias"},
        503: _MOVE[503],
    },
)
@needs(ADMIN)
async def set_traffic(
    name: str,
    registry: RegistryDep,
    aliases: AliasesDep,
    dataplane: DataPlaneDep,
    body: Annotated[dict[str, Any], Body(openapi_examples=_TRAFFIC_EXAMPLES)],
) -> TrafficView:
    """Weights per alias (percent, summing to 100; ``{}``: all to production) and an optional
    ``"shadow"`` alias that scores the same rows off the request path."""
    known = registry.routing(name).aliases
    weights, shadow = parse_traffic(body, known)
    await asyncio.to_thread(aliases.set_traffic, name, weights, shadow)
    await dataplane.refresh()
    return TrafficView(model=name, weights=weights, shadow=shadow)


def parse_traffic(body: dict[str, Any], known: dict[str, int]) -> tuple[dict[str, int], str | None]:
    """The weights (sorted by alias, zeros left out) and shadow alias of a traffic body."""
    listed = ", ".join(sorted(known)) or "(none)"
    shadow = body.get("shadow")
    if shadow is not None and (not isinstance(shadow, str) or shadow not in known):
        raise InvalidInput(f"shadow: {shadow!r} is not an alias of this model", expected=listed)
    weights: dict[str, int] = {}
    for alias, weight in sorted(body.items()):
        if alias == "shadow":
            continue
        if alias not in known:
            raise InvalidInput(f"{alias!r} is not an alias of this model", expected=listed)
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise InvalidInput(
                f"{alias}: weight {weight!r} is not a whole percent >= 0",
                expected='e.g. {"production": 90, "staging": 10}',
            )
        if weight:
            weights[alias] = weight
    total = sum(weights.values())
    if weights and total != 100:
        raise InvalidInput(
            f"the weights sum to {total}, not 100",
            expected='e.g. {"production": 90, "staging": 10}',
        )
    return weights, shadow


def _actor(request: Request) -> str:
    actor: str = request.scope.get(ACTOR, ANONYMOUS)
    return actor


def _view(name: str, result: MoveResult, verdict: Verdict | None) -> AliasMoveView:
    return AliasMoveView(
        model=name,
        alias=result.alias,
        version=result.version,
        previous=result.previous,
        moved=result.moved,
        gate=None if verdict is None else verdict.as_dict(),
    )
