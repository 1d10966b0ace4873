"""Prometheus metrics of the training jobs, on the app's registry (``app.state.metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, Histogram

from service.jobs.records import JobRecord, JobStatus

_DURATION_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600)


class JobMetrics:
    """Jobs by status and queue depth (read from the store, shared by every replica), and
    the run time of the jobs this process ran."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry or CollectorRegistry()
        self.jobs = Gauge(
            "digits_jobs",
            "Training jobs in the job store, by status.",
            ["status"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "digits_job_queue_depth",
            "Training jobs queued, waiting for a worker.",
            registry=registry,
        )
        self.duration = Histogram(
            "digits_job_duration_seconds",
            "Wall time from start to end of the jobs run by this process, by final status.",
            ["status"],
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )

    def update_counts(self, counts: dict[JobStatus, int]) -> None:
        """Set the by-status gauges and the queue depth from a store count."""
        for status, count in counts.items():
            self.jobs.labels(status.value).set(count)
        self.queue_depth.set(counts.get(JobStatus.QUEUED, 0))

    def observe(self, job: JobRecord) -> None:
        """Record the run time of a finished job."""
        if job.started_at is not None and job.finished_at is not None:
            self.duration.labels(job.status.value).observe(job.finished_at - job.started_at)
