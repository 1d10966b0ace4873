"""One promotion: ``promote(aliases, model, version, alias, gate, actor, expect)``, used by a
job's ``"promote": true`` (``service/jobs/worker.py``) and by a move
(``PUT /models/{name}/aliases/{alias}``, ``service/http/routes/rollout.py``) alike.

The check and the move are a compare-and-set: the gate judges ``version`` against the version
``production`` names when it reads it, and the move (or the record of a refusal) happens only
if ``alias`` and ``production`` still name what the check saw; if another move got there
first, the check is made again against the new one. Both decisions land in the history: a
move, or a refusal (kind ``refused``, the alias unmoved). The measuring is the caller's
(``Gate.measure``): rollout depends on the database alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from service.errors import AliasChanged
from service.rollout.aliases import PRODUCTION, REFUSED, AliasMoved, AliasStore, MoveResult
from service.rollout.gate import Gate, Verdict

#: ``expect`` when the caller saw nothing in particular: any version, re-checked on a race.
ANY: Final = object()
_ATTEMPTS = 5


@dataclass(frozen=True)
class Promotion:
    """What ``promote`` decided: the move (``None`` when refused) and the gate's verdict."""

    result: MoveResult | None
    verdict: Verdict | None

    @property
    def promoted(self) -> bool:
        return self.result is not None


def promote(
    aliases: AliasStore,
    model: str,
    version: int,
    alias: str,
    gate: Gate | None,
    actor: str,
    expect: int | object | None = ANY,
    *,
    reason: str,
    kind: str = "move",
) -> Promotion:
    """Move ``alias`` of ``model`` to ``version`` if ``gate`` passes (``None``: no gate).
    ``expect``: the version the caller saw ``alias`` name (``None``: none; ``ANY``: any);
    ``AliasChanged`` (409) when it names another, or keeps moving between checks."""
    for _attempt in range(_ATTEMPTS):
        seen = aliases.aliases(model)
        current, production = seen.get(alias), seen.get(PRODUCTION)
        if expect is not ANY and current != expect:
            raise AliasChanged(
                f"{model} {alias} names version {current}, not {expect}",
                expected="the version it names now (GET /models/{name}/history)",
            )
        verdict = None if gate is None else gate.check(version, production)
        cas = {alias: current, PRODUCTION: production}
        why = reason if verdict is None else f"{reason}: {verdict.explain()}"
        try:
            refused = verdict is not None and not verdict.passed
            moved = aliases.move(
                model, alias, version, actor=actor, reason=why,
                kind=REFUSED if refused else kind, expect=cas,
            )  # fmt: skip
        except AliasMoved:
            continue  # moved since the check: check again against what it names now
        return Promotion(None if refused else moved, verdict)
    raise AliasChanged(
        f"{model} {alias} kept moving while version {version} was checked",
        expected="the move again once the other moves are done",
    )


def promote_job_version(
    aliases: AliasStore, model: str, version: int, gate: Gate, *, job_id: str, requested: bool
) -> dict[str, Any]:
    """The promotion record of a job's new version: the first version of a model becomes
    its ``production``; a later one does if the job asked and the gate passes."""
    first = aliases.ensure_production(model, version, "the first version of a new model")
    production = aliases.aliases(model).get(PRODUCTION)
    other = None if production == version else production
    unchecked = Verdict(True, version, gate.measure(version), other, None, gate.tolerance)
    if first or production == version:
        why = "the first version of a new model" if first else "already production"
        return _record(requested, True, unchecked, why)
    if not requested:
        return _record(False, False, unchecked, "not asked")
    try:
        outcome = promote(
            aliases, model, version, PRODUCTION, gate, f"job:{job_id}",
            reason=f"job {job_id}", kind="promote",
        )  # fmt: skip
    except AliasChanged as exc:
        return _record(True, False, unchecked, exc.message)
    verdict = outcome.verdict or unchecked
    return _record(True, outcome.promoted, verdict, verdict.explain())


def _record(requested: bool, promoted: bool, verdict: Verdict, reason: str) -> dict[str, Any]:
    return {
        "requested": requested,
        "promoted": promoted,
        "validation_accuracy": verdict.accuracy,
        "production_version": verdict.production_version,
        "production_validation_accuracy": verdict.production_accuracy,
        "tolerance": verdict.tolerance,
        "reason": reason,
    }
