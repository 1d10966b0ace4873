"""The data plane (as in MLServer): protocol-independent inference over the registry.

Routes of any protocol (``/predict``; ``/v2``, the Open Inference Protocol: routes/v2.py)
decode their body into float32 ``(N, 64)`` rows and call ``DataPlane.infer``; it picks the
model version (``?version=``, ``?alias=``, else the canary split or ``production``: see
``ModelRegistry.resolve``), hands the rows to that version's micro-batcher, counts the answer
per version, offers the rows to the shadow version if one is set, and returns the
probabilities with the version (and alias) that answered.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from service.errors import InvalidInput, ModelNotReady, ModelUnavailable
from service.inference.batcher import MicroBatcher
from service.inference.deadline import REQUEST_DEADLINE
from service.inference.inline import forward_of, inline_rows
from service.inference.loaded import LoadedModel
from service.inference.model_state import ModelState
from service.inference.registry import ModelRegistry
from service.inference.shadow import ShadowScorer
from service.metrics import ServiceMetrics
from training.digits import N_CLASSES, N_FEATURES

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InferenceResult:
    """The answer of one model version to one request's rows."""

    model: str
    version: int
    device: str
    probabilities: np.ndarray  # (N, 10) float32
    #: The alias the request was routed by (``None`` when pinned with a version).
    alias: str | None = None
    #: The argmax of each row when already computed (else ``labels`` computes it).
    predicted: np.ndarray | None = None
    #: The outlier score of each row (N,) and the version's threshold; ``None`` for a version
    #: exported without an outlier score.
    outlier_scores: np.ndarray | None = None
    outlier_threshold: float | None = None
    #: The runtime that ran the forward (``torchscript``, ``onnxruntime``).
    runtime: str | None = None

    @property
    def outliers(self) -> np.ndarray | None:
        """Whether each row's outlier score is over the threshold, (N,) bool, or ``None``."""
        if self.outlier_scores is None or self.outlier_threshold is None:
            return None
        flags: np.ndarray = self.outlier_scores > self.outlier_threshold
        return flags

    @property
    def labels(self) -> np.ndarray:
        """The predicted class of each row, (N,) int64."""
        if self.predicted is not None:
            return self.predicted
        labels: np.ndarray = self.probabilities.argmax(axis=1)
        return labels


class DataPlane:
    """Owns one micro-batcher per loaded model version and one forward thread per device."""

    def __init__(
        self,
        registry: ModelRegistry,
        metrics: ServiceMetrics,
        *,
        default_model: str,
        max_rows: int,
        max_batch_size: int,
        max_wait_ms: float,
        max_queued_rows: int | None = None,
        inline_forward_max_us: float = 1000.0,
        freeze_heap: bool = False,
        shadow_queue_size: int = 64,
    ) -> None:
        self.registry = registry
        self.metrics = metrics
        self.default_model = default_model
        self.max_rows = max_rows
        self.max_batch_size = max_batch_size
        self.max_wait_ms = max_wait_ms
        self.max_queued_rows = max_queued_rows
        self.inline_forward_max_us = inline_forward_max_us
        self.freeze_heap = freeze_heap
        self.executor = _forward_thread()
        self._batchers: dict[tuple[str, int], tuple[LoadedModel, MicroBatcher]] = {}
        self._retired: list[MicroBatcher] = []  # replaced ones, closed at shutdown
        self._uncalibrated: list[tuple[LoadedModel, MicroBatcher]] = []  # inline_rows unset
        self._changing = asyncio.Lock()  # repository loads and unloads, one at a time
        self.shadow = ShadowScorer(
            metrics.versions,
            lambda model, rows: self._probabilities(model, rows),
            queue_size=shadow_queue_size,
            max_rows=max_batch_size,
        )

    async def infer(
        self,
        name: str,
        version: int | None,
        rows: np.ndarray,
        *,
        alias: str | None = None,
        request_id: str | None = None,
    ) -> InferenceResult:
        """Probabilities of ``name`` for float32 rows (N, 64), within the current request's
        deadline (``service.inference.deadline``): at ``version`` if given, else at ``alias``'s
        version, else as the traffic split (sticky per ``request_id``) or ``production``
        says."""
        if rows.ndim != 2 or rows.shape[1] != N_FEATURES or rows.dtype != np.float32:
            raise InvalidInput(
                f"expected float32 rows of shape (N, {N_FEATURES}), got {rows.dtype} {rows.shape}"
            )
        start = time.perf_counter()
        choice = self.registry.resolve(name, version, alias, request_id)
        model = choice.model
        scored = await self._batcher(model).submit(rows, REQUEST_DEADLINE.get())
        probabilities, scores = scored[:, :N_CLASSES], scored[:, N_CLASSES]
        labels = probabilities.argmax(axis=1)
        seconds = time.perf_counter() - start
        self.metrics.versions.observe(model.name, model.version, choice.alias, seconds, labels)
        if choice.shadow is not None:
            self.shadow.offer(model, choice.shadow, rows, labels)
        threshold = model.outlier_threshold
        return InferenceResult(
            model.name,
            model.version,
            str(model.device),
            probabilities,
            choice.alias,
            labels,
            None if threshold is None else scores,
            threshold,
            model.runtime.name,
        )

    async def scored(self, model: LoadedModel, rows: np.ndarray) -> np.ndarray:
        """(N, 11) for float32 ``rows`` (N, 64) through ``model``'s batcher, within the
        request's deadline, counted as rows run (not as a request answered): the forward of
        ``service.inference.explain``. A version unloaded meanwhile answers 503."""
        return await self._batcher(model).submit(rows, REQUEST_DEADLINE.get())

    async def _probabilities(self, model: LoadedModel, rows: np.ndarray) -> np.ndarray:
        """The class probabilities (N, 10) of ``rows`` through ``model``'s batcher."""
        scored = await self._batcher(model).submit(rows)
        return scored[:, :N_CLASSES]

    def sync(self) -> None:
        """Give every loaded version a batcher and retire those of versions gone from the
        registry (after a refresh); a retired batcher finishes what it holds."""
        current = {
            (m.name, m.version): m for n in self.registry.names() for m in self.registry.versions(n)
        }
        for key in [k for k, (model, _b) in self._batchers.items() if current.get(k) is not model]:
            self._retired.append(self._batchers.pop(key)[1])
        for model in current.values():
            self._batcher(model)

    async def refresh(self) -> list[LoadedModel]:
        """Load new versions from disk (in a thread) and give each its batcher; with
        ``freeze_heap``, then freeze what is alive (the models and everything imported) out
        of the garbage collector's way, so full collections stay short while serving."""
        loaded = await asyncio.to_thread(self.registry.refresh)
        self.sync()
        await self.warm_up()
        if loaded and self.freeze_heap:
            gc.freeze()  # O(1): no collection, a generation moved aside
        return loaded

    async def unload(self, name: str) -> None:
        """Stop serving ``name`` until ``load(name)``: its versions leave the registry, and
        their batchers are closed so the models leave memory (a request still queued in one
        gets 503 ``ModelUnavailable``). Loads and unloads run one at a time."""
        async with self._changing:
            await asyncio.to_thread(self.registry.unload, name)
            await self._sync_and_close(name, "unloaded")

    async def load(self, name: str) -> ModelState:
        """Load (or reload) every version of ``name`` from disk, each with a warmed batcher;
        the batchers of the versions replaced are closed. The model's state once loaded
        (no unload can come between: loads and unloads run one at a time)."""
        async with self._changing:
            await asyncio.to_thread(self.registry.load, name)
            await self._sync_and_close(name, "reloaded")
            await self.warm_up()
            return self.registry.state(name)

    async def _sync_and_close(self, name: str, what: str) -> None:
        """``sync``, then close the batchers it retired instead of keeping them to shutdown:
        repeated unloads and loads must not pile up models in memory. Their callers get a
        503 ``model_unavailable`` with ``Retry-After``: the service runs."""
        kept = len(self._retired)
        self.sync()
        retired, self._retired = self._retired[kept:], self._retired[:kept]

        def reason() -> ModelNotReady:
            return ModelUnavailable(
                f"model {name!r} was {what} while the request waited for its forward",
                expected=f"retry after {ModelUnavailable.RETRY_AFTER_S} s",
            )

        for batcher in retired:
            await batcher.aclose(reason)

    async def warm_up(self) -> None:
        """Start the forward thread, and time each new model's forward (in that thread) to set
        how many rows its batcher may run inline on the event loop."""
        loop = asyncio.get_running_loop()
        while self._uncalibrated:
            model, batcher = self._uncalibrated.pop()
            batcher.inline_rows = await loop.run_in_executor(
                self.executor, self._inline_rows, model
            )

    def _inline_rows(self, model: LoadedModel) -> int:
        """The most rows whose forward takes at most ``inline_forward_max_us`` (0 off CPU):
        ``service.inference.inline.inline_rows``."""
        return inline_rows(model, self.inline_forward_max_us, self.max_batch_size)

    async def aclose(self) -> None:
        """Stop the shadow scorer and every batcher, then the forward thread."""
        await self.shadow.aclose()
        for batcher in [b for _m, b in self._batchers.values()] + self._retired:
            await batcher.aclose()
        self._batchers.clear()
        self.executor.shutdown(wait=True, cancel_futures=True)

    def _batcher(self, model: LoadedModel) -> MicroBatcher:
        key = (model.name, model.version)
        entry = self._batchers.get(key)
        if entry is not None and entry[0] is model:
            return entry[1]
        if entry is not None:  # the same version number re-published with another artifact
            self._retired.append(entry[1])
        version = str(model.version)
        batcher = MicroBatcher(
            forward_of(model),
            self.executor,
            max_batch_size=self.max_batch_size,
            max_wait_ms=self.max_wait_ms,
            max_queued_rows=self.max_queued_rows,
            on_batch=lambda rows, forward_s, waits: self.metrics.observe_batch(
                model.name, version, rows, forward_s, waits
            ),
        )
        self._batchers[key] = (model, batcher)
        self._uncalibrated.append((model, batcher))
        log.debug("batcher ready for %s v%s", model.name, version)
        return batcher


def _forward_thread() -> ThreadPoolExecutor:
    """The one thread that runs every forward of this device: forwards never overlap on the
    cores (each runtime runs ``DIGITS_TORCH_THREADS`` intra-op threads)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="forward")
