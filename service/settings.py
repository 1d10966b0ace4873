"""Service settings, read from the environment (prefix ``DIGITS_``) or a ``.env`` file.

Every field is documented in the README's "Settings" table; the defaults need no external
service (SQLite job store, local worker processes, models from ``./models``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All settings of the service. Environment variable = ``DIGITS_`` + upper-case name."""

    model_config = SettingsConfigDict(env_prefix="DIGITS_", env_file=".env", extra="ignore")

    # --- serving -------------------------------------------------------------------------
    models_dir: Path = Path("models")
    """Folder of the shipped models: ``<name>/<version>/model.pt`` + ``manifest.json``; only
    read."""
    versions_dir: Path = Path("var/models")
    """Folder of the versions made at run time (jobs) and of the default pins; served
    together with ``models_dir``."""
    device: str = "auto"
    """``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    default_model: str = "cnn"
    """Model answering ``POST /predict``."""
    torch_threads: int = Field(default=1, ge=1)
    """Intra-op threads per process; 1 per worker avoids oversubscribing the cores."""
    max_batch_size: int = Field(default=256, ge=1)
    """Most rows the micro-batcher runs in one forward pass."""
    max_wait_ms: float = Field(default=0.0, ge=0)
    """Extra wait for a batch to fill once several requests are queued (0: none; the forward in
    progress is the gathering window; see docs/service.md)."""
    inline_forward_max_us: float = Field(default=1000.0, ge=0)
    """On CPU, batches whose forward is measured (at load) to take at most this long run on the
    event loop instead of the forward thread, whose hand-off costs more than a small forward;
    0 = every forward in the thread. Never inline on a GPU."""
    freeze_heap: bool = True
    """After models are loaded, move every object alive into the collector's permanent
    generation (``gc.freeze()``): a full collection then skips torch's ~10^6 objects, and
    its pause falls from hundreds of ms to a few (``bench/gc_pauses.py``)."""
    max_queued_rows: int = Field(default=2048, ge=1)
    """Most rows waiting for a forward per model version; a request that would pass it gets
    429 ``overloaded`` with ``Retry-After`` (a request finding the queue empty always gets in)."""
    request_timeout_ms: float = Field(default=10_000.0, ge=0)
    """Deadline of a predict request from its arrival; one still queued when it passes is
    answered 504 without running. ``X-Request-Timeout-Ms`` sets a shorter one per request;
    0 = no deadline."""
    max_rows: int = Field(default=1024, ge=1)
    """Most rows one predict request may carry (413 beyond)."""
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Largest request body accepted (413 beyond)."""
    max_image_bytes: int = Field(default=2 * 1024 * 1024, ge=1)
    """Largest encoded image ``/predict/image`` takes (413 beyond)."""
    max_image_pixels: int = Field(default=4096 * 4096, ge=64)
    """Most pixels (width x height) of an image ``/predict/image`` decodes (413 beyond)."""
    body_read_timeout_s: float = Field(default=10.0, gt=0)
    """A request body that stops arriving for this long is dropped with a 408."""
    reload_interval_s: float = Field(default=2.0, ge=0)
    """How often the models folder is scanned for new versions (0 = never)."""

    # --- process -------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    opentelemetry: bool = False
    """FastAPI's native OpenTelemetry spans and metrics (with the global providers)."""

    # --- training jobs -------------------------------------------------------------------
    database_url: str = "sqlite:///var/jobs.db"
    """SQLAlchemy URL of the job store (e.g. ``postgresql+psycopg://user@host/db``)."""
    job_backend: Literal["local", "celery"] = "local"
    """``local``: worker processes owned by the API; ``celery``: Celery workers via a broker."""
    max_running_jobs: int = Field(default=1, ge=1)
    """Training jobs running at once (local backend)."""
    max_queued_jobs: int = Field(default=16, ge=0)
    """Jobs waiting beyond those running; ``POST /train`` answers 429 when full."""
    job_nice: int = Field(default=10, ge=0, le=19)
    """Niceness added to local training worker processes, so predict keeps its CPU share."""
    celery_broker_url: str = "redis://127.0.0.1:6379/0"
    """Broker of the celery backend."""

    # --- access (service/http/access.py holds the route -> key table) -------------------------
    admin_api_key: SecretStr | None = None
    """Key of the routes that change things (``POST /train``, ``DELETE /train/{id}``)."""
    admin_api_key_file: Path | None = None
    """File holding the admin key (a Docker secret, say); instead of ``admin_api_key``."""
    read_api_key: SecretStr | None = None
    """When set, every route but ``/health/*``, ``/metrics`` and the API docs needs this key
    (or the admin key)."""
    read_api_key_file: Path | None = None
    """File holding the read key; instead of ``read_api_key``."""
    allow_unauthenticated: bool = False
    """Start on a non-loopback address without an admin key (refused otherwise)."""

    # --- job limits ------------------------------------------------------------------
    max_job_macs: int = Field(default=2 * 10**12, gt=0)
    """Largest estimated multiply-accumulates of a whole fit (``service/jobs/cost.py``);
    ``POST /train`` refuses a costlier job with 422. The default admits every recipe at
    twice its iterations (at most ~2.4e11) and the default CNN at 20,000 steps (~1.2e12)."""
    max_job_activation_mb: int = Field(default=256, gt=0)
    """Largest estimated activation memory of one training step, in MiB; a job over it is
    refused with 422 (the recipes need at most ~7 MiB)."""
    job_time_limit_s: float = Field(default=3600.0, gt=0)
    """Wall-clock seconds a job's fit may run; then it stops and ends ``failed: time limit``
    (one that cannot stop is killed 10 s later)."""
    job_stall_s: float = Field(default=300.0, gt=0)
    """Seconds a running job may go without progress (a reported fit step) before it ends
    ``failed: no progress for N s`` and its process is killed. Well above the slowest step
    the cost limits admit (a 4 x 256-channel CNN at the 256 MiB activation bound: 22-29 s
    on one thread of a busy 2-core machine, 2026-12-04) and the export after the fit."""

    # --- rollout -------------------------------------------------------------------------
    gate_tolerance: float = Field(default=0.005, ge=0, le=1)
    """How far below production's validation accuracy a version may be and still be promoted
    by a job's ``"promote": true`` or a move with ``"gate": true``."""
    shadow_queue_size: int = Field(default=64, ge=1)
    """Requests waiting to be scored by a shadow version; beyond it they are dropped and
    counted (``digits_shadow_dropped_total``)."""

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        value = value.strip().lower()
        if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
            return value
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {value!r}")

    @field_validator("admin_api_key", "read_api_key", mode="after")
    @classmethod
    def _empty_key_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        """An empty key (``DIGITS_ADMIN_API_KEY=`` in a compose file) is no key."""
        return value if value is not None and value.get_secret_value().strip() else None

    @model_validator(mode="after")
    def _read_key_files(self) -> Self:
        """``*_API_KEY_FILE``: the key is the file's content, without surrounding whitespace."""
        for name in ("admin_api_key", "read_api_key"):
            path: Path | None = getattr(self, f"{name}_file")
            if path is None:
                continue
            variable = f"DIGITS_{name.upper()}"
            if getattr(self, name) is not None:
                raise ValueError(f"set {variable} or {variable}_FILE, not both")
            try:
                key = path.read_text().strip()
            except OSError as exc:
                raise ValueError(f"{variable}_FILE: cannot read {path}: {exc.strerror}") from None
            if not key:
                raise ValueError(f"{variable}_FILE: {path} is empty")
            setattr(self, name, SecretStr(key))
        return self
