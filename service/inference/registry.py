"""What is loaded in memory: name -> version -> ``LoadedModel``, and whether each model can
answer. Knows nothing about HTTP.

``refresh()`` looks at the disk again (``ModelRepository.scan``): it loads the versions it has
not loaded (in the runtime ``DIGITS_RUNTIME`` picks, sha256 checked, warm-up forward run),
reloads those whose files changed, forgets those that are gone, and retries a refused artifact
once its files change (size or mtime of ``model.pt``, ``model.onnx`` or ``manifest.json``),
then reads the aliases and traffic settings of every model (``AliasStore``, shared by the
replicas). A model answers with the version its ``production``
alias names; a model seen for the first time gets its first version as ``production`` (or the
version of a legacy ``DEFAULT`` pin file, once: the alias is the record from then on). When the
production version cannot be loaded the model is not ready (503 on its predict, the reason in
``/health/ready``): another version never answers in its place.

With a version store (``DIGITS_VERSIONS_URL=s3://...``), each refresh first copies the
versions published there that the local cache (the runtime folder) lacks
(``VersionStore.pull``); while the store cannot be read, what is on disk keeps serving and
``store_problem`` says why (readiness: ``degraded``).

``unload(name)`` drops every version of a model from memory and keeps it out (``refresh``
skips it, ``get`` raises ``ModelUnloaded``) until ``load(name)`` loads it from disk again. Both
are this process's own: another process serving the same folders is not told.
"""

from __future__ import annotations

import logging
import threading
from typing import NamedTuple

from sqlalchemy.exc import SQLAlchemyError

from service.errors import (
    AliasNotFound,
    ModelNotFound,
    ModelNotReady,
    ModelUnloaded,
    VersionNotFound,
)
from service.inference.artifact_store import StoreError, VersionStore
from service.inference.loaded import Attempt, LoadedModel, load_artifact
from service.inference.model_state import ModelState, snapshot
from service.inference.repository import ModelRepository, Scan
from service.rollout.aliases import PRODUCTION, AliasStore, Routing, pick_alias

log = logging.getLogger(__name__)


class Choice(NamedTuple):
    """The version that answers a request, the alias it was reached by (``None`` when pinned
    by ``?version=``), and the version that scores the same rows in the shadow, if any. (A
    named tuple: built on every request, and cheaper to build than a frozen dataclass.)"""

    model: LoadedModel
    alias: str | None
    shadow: LoadedModel | None = None


_NO_ROUTING = Routing()


class ModelRegistry:
    """Loaded models by name and version, and each model's state."""

    def __init__(
        self,
        repository: ModelRepository,
        device: str,
        aliases: AliasStore,
        store: VersionStore | None = None,
    ) -> None:
        if store is not None and repository.runtime is None:
            raise ValueError("a version store needs a runtime folder for its local cache")
        self.repository = repository
        self.store = store
        #: Why the version store could not be read at the last refresh, if it could not.
        self.store_problem: str | None = None
        self.device = device
        self.aliases = aliases
        self._routing: dict[str, Routing] = {}
        self._models: dict[str, dict[int, LoadedModel]] = {}
        self._states: dict[str, ModelState] = {}
        self._attempts: dict[tuple[str, int], Attempt] = {}
        #: Folders that could not be served (path -> reason), as of the last refresh.
        self.failures: dict[str, str] = {}
        #: Why nothing can be served at all (the models folder is gone), if so.
        self.problem: str | None = None
        self._unloaded: set[str] = set()
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()

    def refresh(self) -> list[LoadedModel]:
        """Bring memory in line with the disk; returns the versions newly (re)loaded.

        Blocking (file reads, ``torch.jit.load`` or an ONNX Runtime session, warm-up): call
        it from a thread, not the event loop. Concurrent calls are serialised.
        """
        with self._refresh_lock:
            self._pull()
            scan = self.repository.scan()
            loaded: list[LoadedModel] = []
            attempts: dict[tuple[str, int], Attempt] = {}
            for artifact in scan.artifacts:
                if artifact.key[0] in self._unloaded:
                    continue
                attempt = self._attempts.get(artifact.key)
                if attempt is None or attempt.stamp != artifact.stamp:
                    attempt = load_artifact(self.repository, artifact, self.device)
                    if attempt.model is not None:
                        loaded.append(attempt.model)
                attempts[artifact.key] = attempt
            self._attempts = attempts  # versions no longer on disk are forgotten
            routing = self._sync_aliases(scan)
            self._publish(scan, attempts, routing)
            return loaded

    def _pull(self) -> None:
        """Copy the store's new versions into the runtime folder (with a store); keep why it
        failed in ``store_problem`` (logged once per new reason)."""
        if self.store is None:
            return
        try:
            self.store.pull(self.repository.writable)
            problem = None
        except StoreError as exc:
            problem = str(exc)
        if problem is not None and problem != self.store_problem:
            log.error("version store: %s; serving the versions on disk", problem)
        elif problem is None and self.store_problem is not None:
            log.info("version store %s readable again", self.store.url)
        self.store_problem = problem

    def _sync_aliases(self, scan: Scan) -> dict[str, Routing]:
        """Give each new model its first ``production``, then read every model's routing; on
        a database error keep the routing already known (and say so)."""
        try:
            for name, on_disk in scan.versions.items():
                if self._routing.get(name, _NO_ROUTING).production is None:
                    self._first_production(name, on_disk)
            return self.aliases.routing()
        except SQLAlchemyError as exc:
            log.warning("could not read the model aliases, keeping the last known: %s", exc)
            return self._routing

    def _first_production(self, name: str, on_disk: set[int]) -> None:
        pinned = self.repository.pinned_default(name)
        if pinned is not None:
            reason = f"migrated from the DEFAULT pin file of {name} (no longer read)"
        else:
            pinned, reason = min(on_disk), "the first version of a new model"
        if self.aliases.ensure_production(name, pinned, reason):
            log.info("%s: production is version %d (%s)", name, pinned, reason)

    def _publish(
        self, scan: Scan, attempts: dict[tuple[str, int], Attempt], routing: dict[str, Routing]
    ) -> None:
        found = snapshot(scan, attempts, routing, self._unloaded)
        for path, reason in found.failures.items():
            if path not in self.failures:
                log.error("refusing model folder %s: %s", path, reason)
        with self._lock:
            self._models, self._states, self._routing = found.models, found.states, routing
            self.failures, self.problem = found.failures, scan.missing_root

    def get(self, name: str, version: int | None = None) -> LoadedModel:
        """The model ``name`` at ``version`` (``None`` = its production version)."""
        with self._lock:
            state = self._states.get(name)
            if state is None:
                raise self._not_found(name)
            if state.unloaded:
                raise ModelUnloaded(
                    f"model {name!r} is unloaded", expected=f"load model {name!r} first"
                )
            versions = self._models[name]
            chosen = state.default_version if version is None else version
            model = versions.get(chosen)
            if model is not None:
                return model
            if version is None:
                raise ModelNotReady(
                    f"model {name!r} is not ready: {state.reason}",
                    expected="a servable default version (see GET /health/ready)",
                )
            if chosen in state.refused:
                raise ModelNotReady(
                    f"model {name!r} version {chosen} cannot be served: {state.refused[chosen]}",
                    expected=f"one of: {', '.join(str(v) for v in sorted(versions)) or '(none)'}",
                )
            raise VersionNotFound(
                f"model {name!r} has no version {chosen}",
                expected=f"one of: {', '.join(str(v) for v in sorted(versions)) or '(none)'}",
            )

    def unload(self, name: str) -> None:
        """Drop every loaded version of ``name`` and keep it unloaded until ``load(name)``
        (``ModelNotFound`` if there is no such model). Blocking: scans the disk."""
        with self._refresh_lock:
            self.state(name)
            self._unloaded.add(name)
            self._attempts = {k: a for k, a in self._attempts.items() if k[0] != name}
            self._publish(self.repository.scan(), self._attempts, self._routing)
        log.info("unloaded %s on request", name)

    def load(self, name: str) -> list[LoadedModel]:
        """Load (or reload) every version of ``name`` from disk, sha256 checked and warmed;
        returns those loaded (``ModelNotFound`` if it is not on disk). Blocking."""
        with self._refresh_lock:
            if name not in self.repository.scan().versions:
                raise self._not_found(name)
            self._unloaded.discard(name)
            self._attempts = {k: a for k, a in self._attempts.items() if k[0] != name}
        return self.refresh()

    def resolve(
        self,
        name: str,
        version: int | None = None,
        alias: str | None = None,
        request_id: str | None = None,
    ) -> Choice:
        """Which version answers a request: ``version`` if given, else ``alias``'s, else the
        canary split's pick (sticky per ``request_id``) or ``production``; with the shadow
        version of an unpinned request when one is set."""
        if version is not None:
            return Choice(self.get(name, version), None)
        # Both dicts are swapped whole by a refresh, never changed: read without the lock.
        routing = self._routing.get(name, _NO_ROUTING)
        if alias is None and not routing.weights and routing.shadow is None:
            return Choice(self.get(name), PRODUCTION)  # the common case, kept short
        versions = self._models.get(name, {})
        shadow: str | None = None
        if alias is None:
            alias = pick_alias(routing.weights, request_id) if routing.weights else PRODUCTION
            shadow = routing.shadow
        model = self.get(name) if alias == PRODUCTION else self.get(name, self._alias(name, alias))
        if shadow is None or shadow == alias:
            return Choice(model, alias)
        shadow_model = versions.get(routing.aliases.get(shadow, 0))
        return Choice(model, alias, None if shadow_model is model else shadow_model)

    def routing(self, name: str) -> Routing:
        """The aliases and traffic settings of ``name`` (``ModelNotFound`` if no such)."""
        self.state(name)
        with self._lock:
            return self._routing.get(name, _NO_ROUTING)

    def _alias(self, name: str, alias: str) -> int:
        version = self.routing(name).aliases.get(alias)
        if version is None:
            known = ", ".join(sorted(self.routing(name).aliases)) or "(none)"
            raise AliasNotFound(
                f"model {name!r} has no alias {alias!r}", expected=f"one of: {known}"
            )
        return version

    def names(self) -> list[str]:
        """Names of the models on disk, sorted."""
        with self._lock:
            return sorted(self._states)

    def state(self, name: str) -> ModelState:
        """Whether ``name`` can answer by default (``ModelNotFound`` if there is no such)."""
        with self._lock:
            state = self._states.get(name)
            if state is None:
                raise self._not_found(name)
            return state

    def _not_found(self, name: str) -> ModelNotFound:
        known = ", ".join(sorted(self._states)) or "(none on disk)"
        return ModelNotFound(f"no model named {name!r}", expected=f"one of: {known}")

    def versions(self, name: str) -> list[LoadedModel]:
        """Every loaded version of ``name``, oldest first (``ModelNotFound`` if none)."""
        self.state(name)
        with self._lock:
            return [self._models[name][v] for v in sorted(self._models[name])]

    def __len__(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._models.values())
