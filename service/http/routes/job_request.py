"""The HTTP request body of ``POST /train``: ``JobSpec`` and its ``Hyperparameters``, each
bound stated in the JSON schema and checked with an error naming the field and its range."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, cast, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    JsonValue,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from service.jobs.records import ResolvedJob
from service.settings import DEFAULT_GATE_TOLERANCE
from training.ensemble_spec import DEFAULT_MEMBERS, ENSEMBLE, EnsembleSpec, ensemble_spec
from training.fit_cost import job_estimate
from training.recipes import Recipe, preset
from training.specs import Family, ModelSpec


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
#: What an ensemble job may override: applied to every member (each keeps its own recipe).
ENSEMBLE_FIELDS = ("seed", "iterations")


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


def _family_rules() -> list[JsonValue]:
    """``FAMILY_FIELDS`` and the ensemble's rules in JSON Schema (``if``/``then``): what a
    family does not use may only be null there, so the schema admits what the route accepts."""

    def rule(family: str, fields: dict[str, JsonValue]) -> JsonValue:
        condition: JsonValue = {
            "properties": {"family": {"const": family}},
            "required": ["family"],
        }
        return {"if": condition, "then": {"properties": fields}}

    null: JsonValue = {"type": "null"}
    rules: list[JsonValue] = []
    for family in sorted(get_args(Family)):
        unused = [name for name, fams in FAMILY_FIELDS.items() if family not in fams]
        hyper: JsonValue = {"properties": {n: null for n in unused}}
        rules.append(rule(family, {"members": null, "hyperparameters": hyper}))
    unused = [name for name in Hyperparameters.model_fields if name not in ENSEMBLE_FIELDS]
    rules.append(rule(ENSEMBLE, {"hyperparameters": {"properties": {n: null for n in unused}}}))
    return rules


class JobSpec(BaseModel):
    """Body of ``POST /train``."""

    # The example Swagger UI's "Try it out" sends: a quick job (about a second of fitting).
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"family": "logistic", "promote": False, "hyperparameters": {"iterations": 100}}
            ],
            "allOf": _family_rules(),
        },
    )

    family: Family | Literal["ensemble"]
    members: list[Family] | None = Field(
        default=None,
        min_length=1,
        max_length=8,
        description="ensemble only: a family per member, repeats allowed (default: cnn cnn "
        "cnn fnn fnn); each member is fitted with its family's recipe and its own seed",
    )
    name: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,64}$")] | None = Field(
        default=None, description="model name to publish under (default: the family)"
    )
    promote: bool = Field(
        default=False,
        strict=True,
        description="move `production` to the new version if it passes the promotion gate "
        "(validation accuracy at least production's minus DIGITS_GATE_TOLERANCE)",
    )
    recipe: Literal["default", "lecture"] = "default"
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)

    @field_validator("hyperparameters")
    @classmethod
    def _fields_fit_family(cls, value: Hyperparameters, info: ValidationInfo) -> Hyperparameters:
        family = info.data.get("family")
        if family == ENSEMBLE:
            extra = sorted(set(value.model_dump(exclude_none=True)) - set(ENSEMBLE_FIELDS))
            if extra:
                raise PydanticCustomError(
                    "not_for_family",
                    "an ensemble takes only {allowed} (its members keep their family's "
                    "recipe), got {extra}",
                    {"allowed": " and ".join(ENSEMBLE_FIELDS), "extra": ", ".join(extra)},
                )
            return value
        for name, families in FAMILY_FIELDS.items():
            if family and getattr(value, name) is not None and family not in families:
                raise PydanticCustomError(
                    "not_for_family",
                    "{field} applies to family {families}, not {family}",
                    {"field": name, "families": " or ".join(families), "family": family},
                )
        return value

    @model_validator(mode="after")
    def _members_only_for_ensembles(self) -> JobSpec:
        if self.members is not None and self.family != ENSEMBLE:
            raise PydanticCustomError(
                "not_for_family",
                "members applies to family ensemble, not {family}",
                {"family": self.family},
            )
        return self

    @property
    def model_name(self) -> str:
        return self.name or self.family

    def resolve(
        self, *, time_limit_s: float | None = None, gate_tolerance: float = DEFAULT_GATE_TOLERANCE
    ) -> ResolvedJob:
        """The job to queue: the family's recipe preset with this request's overrides
        applied (an ensemble: its members, each with its recipe), its estimated cost, the
        wall-clock limit of its fit and the promotion gate's tolerance."""
        spec, recipe = self._fit()
        members = spec.members if isinstance(spec, EnsembleSpec) else None
        described = spec.recipe() if isinstance(spec, EnsembleSpec) else cast(Recipe, recipe)
        return ResolvedJob(
            family=self.family,
            name=self.model_name,
            promote=self.promote,
            recipe=self.recipe,
            architecture=spec.to_dict(),
            hyperparameters=described.to_dict(),
            members=None if members is None else [m.to_dict() for m in members],
            cost=job_estimate(spec, recipe),
            time_limit_s=time_limit_s,
            gate_tolerance=gate_tolerance,
        )

    def _fit(self) -> tuple[ModelSpec | EnsembleSpec, Recipe | None]:
        if self.family == "ensemble":
            hp = self.hyperparameters
            members = ensemble_spec(
                self.members or DEFAULT_MEMBERS,
                seed=hp.seed or 0,
                recipe=self.recipe,
                iterations=hp.iterations,
            )
            return members, None
        base = preset(self.family, self.recipe)
        overrides = self.hyperparameters.model_dump(exclude_none=True)
        arch = {k: overrides.pop(k) for k in _ARCHITECTURE_FIELDS if k in overrides}
        if "channels" in arch:
            arch["channels"] = tuple(arch["channels"])
        spec = ModelSpec.from_dict({**base.spec.to_dict(), **arch})
        return spec, base.recipe.with_overrides(**overrides)
