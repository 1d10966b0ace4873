"""Prometheus metrics of one app, on its own ``CollectorRegistry`` (several apps never clash).

``create_app`` builds one ``ServiceMetrics`` and puts it on ``app.state.metrics``; ``GET
/metrics`` renders ``metrics.registry``. Other components register their metrics on the same
registry, each in its own small class, e.g. the training jobs::

    class JobMetrics:
        def __init__(self, registry: CollectorRegistry) -> None:
            self.jobs = Counter("digits_jobs_total", "...", ["status"], registry=registry)

    app.state.job_metrics = JobMetrics(app.state.metrics.registry)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServiceMetrics:
    """The HTTP and inference metrics of one app."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests, self.latency = _http_metrics(self.registry)
        self.predictions, self.batch_size, self.queue_wait, self.forward_time = _batch_metrics(
            self.registry
        )
        # Labelled children by label values: ``labels()`` costs a few microseconds per call
        # (argument checks, a lock), this dict lookup well under one.
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._batch_children: dict[
            tuple[str, str], tuple[Histogram, Counter, Histogram, Histogram]
        ] = {}
        self.models_loaded = Gauge(
            "digits_models_loaded",
            "Model versions loaded and servable.",
            registry=self.registry,
        )
        self.versions = VersionMetrics(self.registry)

    def track_models(self, count: Callable[[], float]) -> None:
        """Let the ``models_loaded`` gauge read ``count()`` at each scrape."""
        self.models_loaded.set_function(count)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one finished HTTP request and its latency."""
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_batch(
        self, model: str, version: str, rows: int, forward_s: float, waits: list[float]
    ) -> None:
        """Record one forward pass of ``rows`` rows taking ``forward_s`` seconds, and how long
        each request in it had waited in the queue."""
        key = (model, version)
        children = self._batch_children.get(key)
        if children is None:
            children = (
                self.batch_size.labels(model, version),
                self.predictions.labels(model, version),
                self.queue_wait.labels(model, version),
                self.forward_time.labels(model, version),
            )
            self._batch_children[key] = children
        batch_size, predictions, queue_wait, forward_time = children
        batch_size.observe(rows)
        predictions.inc(rows)
        forward_time.observe(forward_s)
        for wait in waits:
            queue_wait.observe(wait)

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


def _http_metrics(registry: CollectorRegistry) -> tuple[Counter, Histogram]:
    """HTTP requests by route template, method and status, and their latency."""
    requests = Counter(
        "digits_http_requests_total",
        "HTTP requests by route template, method and status code.",
        ["route", "method", "status"],
        registry=registry,
    )
    latency = Histogram(
        "digits_http_request_duration_seconds",
        "Time from the request's start to the end of its response, by route template.",
        ["route", "method"],
        buckets=_LATENCY_BUCKETS,
        registry=registry,
    )
    return requests, latency


def _batch_metrics(
    registry: CollectorRegistry,
) -> tuple[Counter, Histogram, Histogram, Histogram]:
    """The micro-batchers' work by model and version: rows predicted, rows per forward, queue
    waits and forward times."""
    predictions = Counter(
        "digits_predictions_total",
        "Rows predicted, by model and version.",
        ["model", "version"],
        registry=registry,
    )
    batch_size = Histogram(
        "digits_batch_size_rows",
        "Rows per forward pass actually run by the micro-batcher, by model and version.",
        ["model", "version"],
        buckets=_BATCH_BUCKETS,
        registry=registry,
    )
    queue_wait = Histogram(
        "digits_queue_wait_seconds",
        "Time a predict request waited in its model's queue before its forward began.",
        ["model", "version"],
        buckets=_LATENCY_BUCKETS,
        registry=registry,
    )
    forward_time = Histogram(
        "digits_forward_seconds",
        "Time of each forward pass of the micro-batcher (all the rows of one batch).",
        ["model", "version"],
        buckets=_LATENCY_BUCKETS,
        registry=registry,
    )
    return predictions, batch_size, queue_wait, forward_time


class VersionMetrics:
    """Per model version: requests and their inference latency (by the alias that routed
    them), predicted classes; and the shadow comparisons (rows compared, agreeing, dropped)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.latency = Histogram(
            "digits_version_inference_seconds",
            "Time from a request's rows reaching the data plane to its probabilities, by model, "
            "version and the alias that routed the request ('' when pinned with ?version=); its "
            "_count is the requests each version answered.",
            ["model", "version", "alias"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.classes = Counter(
            "digits_predicted_class_total",
            "Rows predicted as each class, by model and version.",
            ["model", "version", "label"],
            registry=registry,
        )
        self.shadow_rows = Counter(
            "digits_shadow_rows_total",
            "Rows scored by a shadow version, by model, answering version and shadow version.",
            ["model", "version", "shadow"],
            registry=registry,
        )
        self.shadow_agreed = Counter(
            "digits_shadow_agreements_total",
            "Shadow-scored rows whose label equals the answering version's.",
            ["model", "version", "shadow"],
            registry=registry,
        )
        self.shadow_dropped = Counter(
            "digits_shadow_dropped_total",
            "Requests not shadow-scored because the shadow queue was full, by model.",
            ["model"],
            registry=registry,
        )
        self._children: dict[tuple[str, int, str | None], tuple[Histogram, list[Counter]]] = {}

    def observe(
        self, model: str, version: int, alias: str | None, seconds: float, labels: np.ndarray
    ) -> None:
        """Count one answered request of ``model`` ``version`` and its predicted labels."""
        key = (model, version, alias)
        children = self._children.get(key)
        if children is None:
            v = str(version)
            children = (
                self.latency.labels(model, v, alias or ""),
                [self.classes.labels(model, v, str(c)) for c in range(10)],
            )
            self._children[key] = children
        children[0].observe(seconds)
        if len(labels) == 1:
            children[1][int(labels[0])].inc()
        else:
            for label, count in enumerate(np.bincount(labels, minlength=10).tolist()):
                if count:
                    children[1][label].inc(count)
