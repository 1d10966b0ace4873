"""What a training job is: the ``JobSpec`` request body, the ``JobStatus`` enum, the SQL
tables the job store keeps, and ``JobRecord`` / ``Curve``, the rows read back.

Tables (SQLAlchemy Core, portable between SQLite and PostgreSQL)::

    jobs            one row per job: spec, status, owner, worker pid, progress, result
    job_curve       the curves, appended in chunks (one row per progress write), so a
                    progress write is an INSERT of the new points, never a rewrite
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from training.models import Family, ModelSpec
from training.recipes import Recipe, preset


class JobStatus(enum.StrEnum):
    """Life of a job: queued -> running -> succeeded | failed | cancelled."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


# --- request schema ------------------------------------------------------------------------


def _no_bools(value: Any, allowed: str) -> None:
    """JSON ``true``/``false`` where a number goes: pydantic's lax mode would read 1/0."""
    values = value if isinstance(value, list) else [value]
    if any(isinstance(v, bool) for v in values):
        raise PydanticCustomError(
            "number_type",
            "must be a number in {range}, got {value}",
            {"range": allowed, "value": json.dumps(value)},
        )


@dataclass(frozen=True)
class _Bounded(WrapValidator):
    """A ``WrapValidator`` that also states its bounds in the JSON schema (``minimum``,
    ``maxItems``, ...), so a client or a fuzzer can read them."""

    bounds: dict[str, Any] = field(default_factory=dict)

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.update(self.bounds)
        return json_schema


def _bounded(lo: float, hi: float, *, lo_open: bool = False) -> _Bounded:
    """A range check whose error names the whole allowed range (pydantic's ``ge``/``le``
    errors name only the bound that was crossed); booleans are refused, not read as 1/0."""
    allowed = f"{'(' if lo_open else '['}{lo}, {hi}]"

    def check(raw: Any, handler: ValidatorFunctionWrapHandler) -> float | None:
        _no_bools(raw, allowed)
        value: float | None = handler(raw)
        if value is None:
            return value
        inside = (lo < value if lo_open else lo <= value) and value <= hi
        if not (inside and math.isfinite(value)):
            raise PydanticCustomError(
                "out_of_range",
                "must be in {range}, got {value}",
                {"range": allowed, "value": value},
            )
        return value

    low = {"exclusiveMinimum": lo} if lo_open else {"minimum": lo}
    return _Bounded(check, bounds={**low, "maximum": hi})


def _check_channels(raw: Any, handler: ValidatorFunctionWrapHandler) -> list[int] | None:
    _no_bools(raw, "[1, 256]")
    value: list[int] | None = handler(raw)
    if value is not None and not (1 <= len(value) <= 4 and all(1 <= c <= 256 for c in value)):
        raise PydanticCustomError(
            "out_of_range",
            "must be 1 to 4 channel counts, each in [1, 256], got {value}",
            {"value": value},
        )
    return value


#: Hyper-parameters that only some families use; others are rejected for them.
FAMILY_FIELDS: dict[str, tuple[Family, ...]] = {
    "hidden": ("fnn",),
    "depth": ("fnn",),
    "activation": ("fnn",),
    "channels": ("cnn",),
    "dropout": ("fnn", "cnn"),
}
_ARCHITECTURE_FIELDS = ("hidden", "depth", "activation", "channels", "dropout", "input_scale")


class Hyperparameters(BaseModel):
    """Overrides of the recipe preset; an omitted (or null) field keeps the preset's value.

    Each description gives the allowed range; a value outside it is a 422 naming the field.
    """

    model_config = ConfigDict(extra="forbid")

    iterations: Annotated[int | None, _bounded(1, 20_000), Field(description="[1, 20000]")] = None
    lr: Annotated[float | None, _bounded(0, 10, lo_open=True), Field(description="(0, 10]")] = None
    momentum: Annotated[float | None, _bounded(0, 0.999), Field(description="[0, 0.999]")] = None
    optimizer: Literal["sgd", "adam", "adamw"] | None = None
    weight_decay: Annotated[float | None, _bounded(0, 1), Field(description="[0, 1]")] = None
    schedule: Literal["constant", "cosine"] | None = None
    batch_size: Annotated[
        int | None, _bounded(1, 4096), Field(description="[1, 4096]; >= 1437 is full batch")
    ] = None
    label_smoothing: Annotated[float | None, _bounded(0, 0.5), Field(description="[0, 0.5]")] = None
    augment_shift: bool | None = Field(default=None, strict=True)
    acc_step: Annotated[int | None, _bounded(1, 20_000), Field(description="[1, 20000]")] = None
    seed: Annotated[int | None, _bounded(0, 2**31 - 1), Field(description="[0, 2**31-1]")] = None
    hidden: Annotated[int | None, _bounded(1, 2048), Field(description="fnn: [1, 2048]")] = None
    depth: Annotated[int | None, _bounded(1, 4), Field(description="fnn: [1, 4]")] = None
    activation: Literal["relu", "tanh"] | None = None
    channels: Annotated[
        list[int] | None,
        _Bounded(
            _check_channels,
            bounds={"minItems": 1, "maxItems": 4, "items": {"minimum": 1, "maximum": 256}},
        ),
        Field(description="cnn: 1 to 4 counts in [1, 256]"),
    ] = None
    dropout: Annotated[float | None, _bounded(0, 0.9), Field(description="[0, 0.9]")] = None
    input_scale: Annotated[
        float | None, _bounded(0, 1, lo_open=True), Field(description="(0, 1]")
    ] = None


class JobSpec(BaseModel):
    """Body of ``POST /train``."""

    model_config = ConfigDict(extra="forbid")

    family: Family
    name: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,64}$")] | None = Field(
        default=None, description="model name to publish under (default: the family)"
    )
    promote: bool = Field(
        default=False, strict=True, description="make the new version the default"
    )
    recipe: Literal["default", "lecture"] = "default"
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)

    @field_validator("hyperparameters")
    @classmethod
    def _fields_fit_family(cls, value: Hyperparameters, info: ValidationInfo) -> Hyperparameters:
        family = info.data.get("family")
        for name, families in FAMILY_FIELDS.items():
            if family and getattr(value, name) is not None and family not in families:
                raise PydanticCustomError(
                    "not_for_family",
                    "{field} applies to family {families}, not {family}",
                    {"field": name, "families": " or ".join(families), "family": family},
                )
        return value

    @property
    def model_name(self) -> str:
        return self.name or self.family

    def resolve(self) -> tuple[ModelSpec, Recipe]:
        """The family's recipe preset with this request's overrides applied."""
        base = preset(self.family, self.recipe)
        overrides = self.hyperparameters.model_dump(exclude_none=True)
        arch = {k: overrides.pop(k) for k in _ARCHITECTURE_FIELDS if k in overrides}
        if "channels" in arch:
            arch["channels"] = tuple(arch["channels"])
        spec = ModelSpec.from_dict({**base.spec.to_dict(), **arch})
        return spec, base.recipe.with_overrides(**overrides)

    def stored(self) -> dict[str, Any]:
        """What the job row keeps: the request and the resolved architecture and recipe."""
        spec, recipe = self.resolve()
        return {
            "request": self.model_dump(mode="json"),
            "architecture": spec.to_dict(),
            "recipe": recipe.to_dict(),
        }


# --- tables --------------------------------------------------------------------------------

metadata = MetaData()

jobs_table = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("status", String(16), nullable=False, index=True),
    Column("family", String(16), nullable=False),
    Column("name", String(64), nullable=False),
    Column("promote", Boolean, nullable=False, default=False),
    Column("spec", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    #: Who claimed the job: ``host:pid:token`` of the API process (local) or worker (celery).
    Column("owner", String(200)),
    Column("worker_pid", Integer),
    Column("heartbeat_at", Float),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    #: Why a stop was requested when it is not a user's cancel (then the job ends failed).
    Column("cancel_reason", Text),
    Column("iteration", Integer, nullable=False, default=0),
    Column("total_iterations", Integer, nullable=False),
    Column("elapsed", Float),
    Column("last_loss", Float),
    Column("metrics", JSON),
    Column("model_name", String(64)),
    Column("model_version", Integer),
    Column("error", Text),
)
Index("ix_jobs_created", jobs_table.c.created_at)

curve_table = Table(
    "job_curve",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(32), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    #: Iteration of the first loss in ``losses``.
    Column("first_iteration", Integer, nullable=False),
    Column("losses", JSON, nullable=False),
    #: ``[{"iteration", "train", "test"}, ...]`` recorded in the same span.
    Column("accuracy", JSON, nullable=False),
)
Index("ix_job_curve_job", curve_table.c.job_id, curve_table.c.seq)


# --- rows read back ------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRecord:
    """One row of ``jobs`` (without its curve)."""

    id: str
    status: JobStatus
    family: str
    name: str
    promote: bool
    spec: dict[str, Any]
    created_at: float
    started_at: float | None
    finished_at: float | None
    owner: str | None
    worker_pid: int | None
    heartbeat_at: float | None
    cancel_requested: bool
    cancel_reason: str | None
    iteration: int
    total_iterations: int
    elapsed: float | None
    last_loss: float | None
    metrics: dict[str, Any] | None
    model_name: str | None
    model_version: int | None
    error: str | None

    @classmethod
    def from_row(cls, row: Any) -> JobRecord:
        data = dict(row._mapping)
        data["status"] = JobStatus(data["status"])
        data["cancel_requested"] = bool(data["cancel_requested"])
        data["promote"] = bool(data["promote"])
        return cls(**data)


@dataclass
class Curve:
    """The loss of every iteration so far and the accuracy points, oldest first."""

    losses: list[float] = field(default_factory=list)
    accuracy: list[dict[str, float]] = field(default_factory=list)
    #: ``seq`` of the last chunk read (to ask only for newer chunks next time).
    last_seq: int = 0

    def extend(self, losses: list[float], accuracy: list[dict[str, float]], seq: int) -> None:
        self.losses.extend(losses)
        self.accuracy.extend(accuracy)
        self.last_seq = max(self.last_seq, seq)
