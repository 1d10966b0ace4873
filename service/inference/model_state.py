"""Whether a model can answer without ``?version=``, and why not: its ``production`` alias
against the versions loaded and refused, as of one refresh."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from service.inference.loaded import Attempt, LoadedModel
from service.inference.repository import Scan
from service.rollout.aliases import Routing


@dataclass(frozen=True)
class ModelState:
    """Whether a model can answer without ``?version=``, and why not."""

    name: str
    default_version: int
    ready: bool
    reason: str | None
    #: Versions on disk that could not be loaded, and why.
    refused: dict[int, str] = field(default_factory=dict)
    #: Unloaded on request: nothing is loaded until it is loaded again.
    unloaded: bool = False


@dataclass(frozen=True)
class Snapshot:
    """What one refresh found: the loaded versions per name, each name's state, and the
    folders that could not be served (path -> reason)."""

    models: dict[str, dict[int, LoadedModel]]
    states: dict[str, ModelState]
    failures: dict[str, str]


def snapshot(
    scan: Scan,
    attempts: dict[tuple[str, int], Attempt],
    routing: dict[str, Routing],
    unloaded: set[str],
) -> Snapshot:
    """Sort ``attempts`` into loaded and refused versions and work out each model's state."""
    models: dict[str, dict[int, LoadedModel]] = {name: {} for name in scan.versions}
    refused = {_key_of(path): reason for path, reason in scan.problems.items()}
    failures = dict(scan.problems)
    for (name, version), attempt in attempts.items():
        if attempt.model is not None:
            models[name][version] = attempt.model
        else:
            refused[(name, version)] = attempt.error or "not loadable"
            failures[str(_folder(name, version, scan))] = refused[(name, version)]
    states = {
        name: model_state(
            name, routing.get(name, Routing()).production, models[name], refused, unloaded
        )
        for name in scan.versions
    }
    return Snapshot(models, states, failures)


def model_state(
    name: str,
    production: int | None,
    loaded: dict[int, LoadedModel],
    refused: dict[tuple[str, int], str],
    unloaded: set[str],
) -> ModelState:
    """The state of ``name`` whose ``production`` alias names that version (``None``: the
    alias could not be read)."""
    mine = {v: why for (n, v), why in refused.items() if n == name}
    if production is None:  # the alias could not be read or written (database down)
        why = "its production alias could not be read from the database"
        return ModelState(name, 0, False, why, mine)
    if name in unloaded:
        reason = "it was unloaded on request; load it to serve it again"
        return ModelState(name, production, False, reason, mine, unloaded=True)
    if production in loaded:
        return ModelState(name, production, True, None, mine)
    why = mine.get(production, "it is not on disk")
    reason = f"its production version {production} cannot be served: {why}"
    return ModelState(name, production, False, reason, mine)


def _folder(name: str, version: int, scan: Scan) -> Path:
    for artifact in scan.artifacts:
        if artifact.key == (name, version):
            return artifact.folder
    return Path(name) / str(version)


def _key_of(path: str) -> tuple[str, int]:
    folder = Path(path)
    return (folder.parent.name, int(folder.name))
