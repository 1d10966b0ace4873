"""Service settings, read from the environment (prefix ``DIGITS_``) or a ``.env`` file.

Every field is documented in the README's "Settings" table; the defaults need no external
service (SQLite job store, local worker processes, models from ``./models``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The promotion gate's tolerance unless ``DIGITS_GATE_TOLERANCE`` says otherwise: the one
#: place the figure is written (the gate: ``service/rollout/gate.py``).
DEFAULT_GATE_TOLERANCE = 0.005


class Settings(BaseSettings):
    """All settings of the service. Environment variable = ``DIGITS_`` + upper-case name."""

    model_config = SettingsConfigDict(env_prefix="DIGITS_", env_file=".env", extra="ignore")

    # --- serving -------------------------------------------------------------------------
    models_dir: Path = Path("models")
    """Folder of the shipped models: ``<name>/<version>/model.pt`` + ``model.onnx`` +
    ``manifest.json``; only read."""
    versions_dir: Path = Path("var/models")
    """Folder of the versions made at run time (jobs) and of the default pins; served
    together with ``models_dir``."""
    versions_url: str | None = None
    """Where versions made at run time are kept: unset (or a local path, which then replaces
    ``versions_dir``) for the folder ``versions_dir``; ``s3://bucket/prefix`` for an
    S3-compatible bucket shared by every replica and worker, ``versions_dir`` being then each
    process's local cache of it (endpoint and credentials: the usual ``AWS_*`` variables;
    docs/deployment.md "Model versions in object storage")."""
    device: str = "auto"
    """``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    runtime: Literal["auto", "torchscript", "onnxruntime"] = "auto"
    """What runs each version's forward: ``auto`` (ONNX Runtime on the CPU where the version
    has ``model.onnx``, TorchScript otherwise and on CUDA), ``torchscript`` or
    ``onnxruntime`` (CPU; a version without ``model.onnx`` is refused)."""
    default_model: str = "cnn"
    """Model answering ``POST /predict``."""
    torch_threads: int = Field(default=1, ge=1)
    """Intra-op threads per process (torch's, and each ONNX Runtime session's); 1 per worker
    avoids oversubscribing the cores."""
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
    max_explain_rows: int = Field(default=16, ge=1)
    """Most rows one explain request may carry (413 beyond): each costs 65 rows of forward."""
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Largest request body accepted (413 beyond)."""
    max_image_bytes: int = Field(default=2 * 1024 * 1024, ge=1)
    """Largest encoded image ``/predict/image`` takes (413 beyond)."""
    max_image_pixels: int = Field(default=4096 * 4096, ge=64)
    """Most pixels (width x height) of an image ``/predict/image`` decodes (413 beyond)."""
    max_image_side: int = Field(default=8192, ge=8)
    """Longest side (width or height) of an image ``/predict/image`` decodes (413 beyond)."""
    body_read_timeout_s: float = Field(default=10.0, gt=0)
    """A request body that stops arriving for this long is dropped with a 408."""
    reload_interval_s: float = Field(default=2.0, ge=0)
    """How often the models folder is scanned for new versions (0 = never)."""

    # --- process -------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Level of every logger; the access lines are ``INFO`` (``warning`` turns them off)."""
    log_format: Literal["text", "json"] = "text"
    """``text``: one line per record; ``json``: one JSON object per line (an access line's
    fields: method, path, status, duration_ms, client, request_id, key_id, model, version)."""
    opentelemetry: bool = False
    """FastAPI's native OpenTelemetry spans and metrics (with the global providers)."""

    # --- training jobs -------------------------------------------------------------------
    database_url: str = "sqlite:///var/jobs.db"
    """SQLAlchemy URL of the one database: jobs, their curves, aliases and their history
    (e.g. ``postgresql+psycopg://user@host/db``)."""
    db_auto_migrate: bool = True
    """Bring the database to this release's schema at start (under a lock: of several
    processes starting at once, one migrates). ``false``: refuse to start while it is behind
    (exit 2); an operator runs ``python -m service db upgrade``."""
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

    # --- access (each route declares its key: service/http/policy.py) ---------------------
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
    """Start on a non-loopback address without an admin key (refused otherwise); logged as a
    warning at start and shown on ``/health/ready``."""
    admin_api_key_name: str = Field(default="admin", pattern=r"^[A-Za-z0-9._@-]{1,40}$")
    """Name of the admin key in the records of who changed what (``actor``); never the key."""
    read_api_key_name: str = Field(default="read", pattern=r"^[A-Za-z0-9._@-]{1,40}$")
    """Name of the read key in the records of who changed what."""
    allowed_hosts: str | None = None
    """Comma-separated ``Host`` names the service answers (``*.example.com`` for a domain,
    ``*`` for any); other names get 400. Default: ``localhost,127.0.0.1,[::1]`` when bound
    to loopback, any (``*``) when exposed: then name the public names here."""

    # --- job limits ------------------------------------------------------------------
    max_job_seconds_estimate: float = Field(default=1800.0, gt=0)
    """Longest estimated job, in seconds: its six fits (one on every row, five out-of-fold
    for the calibration; ``training/fit_cost.py``, calibrated on one torch thread of the
    development machine: ``bench/job_cost.py``); ``POST /train`` refuses a longer one with
    422 naming the estimate and this limit. The default (30 minutes, half the time limit)
    admits every recipe, the default ensemble included, at twice its iterations."""
    max_job_activation_mb: int = Field(default=256, gt=0)
    """Largest estimated activation memory of one training step, in MiB; a job over it is
    refused with 422 (the recipes need at most ~7 MiB)."""
    max_queued_plots: int = Field(default=16, ge=1)
    """Plots (``curve.png``/``curve.svg``) waiting for the one drawing thread or being drawn;
    one more gets 429 ``overloaded`` with ``Retry-After``. A plot whose client has gone by its
    turn is not drawn."""
    max_event_followers: int = Field(default=1000, ge=1)
    """Open ``GET /train/{id}/events`` streams in all; one more gets 429 with
    ``Retry-After``. Followers of one job share one poll of the store."""
    max_event_followers_per_job: int = Field(default=500, ge=1)
    """Open event streams of one job; one more gets 429 with ``Retry-After``."""
    job_time_limit_s: float = Field(default=3600.0, gt=0)
    """Wall-clock seconds a job's fit may run; then it stops and ends ``failed: time limit``
    (one that cannot stop is killed 10 s later)."""
    job_stall_s: float = Field(default=300.0, gt=0)
    """Seconds a running job may go without progress (a reported fit step) before it ends
    ``failed: no progress for N s`` and its process is killed. Well above the slowest step
    the cost limits admit (a 4 x 256-channel CNN at the 256 MiB activation bound: 22-29 s
    on one thread of a busy 2-core machine, 2026-12-04) and the export after the fit."""

    # --- rollout -------------------------------------------------------------------------
    gate_tolerance: float = Field(default=DEFAULT_GATE_TOLERANCE, ge=0, le=1)
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

    @field_validator("versions_url")
    @classmethod
    def _check_versions_url(cls, value: str | None) -> str | None:
        value = value.strip() if value is not None else None
        if not value:
            return None
        scheme, sep, rest = value.partition("://")
        if not sep or scheme == "file":
            return value
        if scheme != "s3" or not rest.split("/")[0]:
            raise ValueError(f"expected s3://bucket/prefix or a local path, got {value!r}")
        return value

    @model_validator(mode="after")
    def _local_versions_url(self) -> Self:
        """A local ``versions_url`` (a path or ``file://`` URL) is the versions folder."""
        url = self.versions_url
        if url is not None and not url.startswith("s3://"):
            self.versions_dir = Path(url.removeprefix("file://"))
            self.versions_url = None
        return self

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
