"""Request and response bodies: pydantic models for the OpenAPI docs.

``PredictRequest`` documents the predict body; the route does not validate through it, because
pydantic is several times slower on rows of 64 floats. ``service.http.decode.decode_rows``
parses the same body with orjson and checks it with numpy, giving the same clear messages
("instances[3]: ...").
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from service.http.decode import EXPECTED_ROW
from training.contract import Manifest
from training.digits import N_CLASSES, N_FEATURES, PIXEL_MAX, PIXEL_MIN

# load_digits test row 0 (a 7) and row 1 (a 1): working examples for Swagger UI.
_SEVEN = [0, 0, 2, 15, 16, 16, 13, 0, 0, 0, 8, 12, 8, 12, 16, 0, 0, 0, 0, 0, 0, 15, 10, 0,
          0, 0, 0, 0, 6, 16, 3, 0, 0, 0, 0, 3, 16, 16, 14, 0, 0, 0, 0, 0, 12, 10, 1, 0,
          0, 0, 0, 2, 15, 2, 0, 0, 0, 0, 0, 13, 8, 0, 0, 0]  # fmt: skip
_ONE = [0, 0, 0, 3, 15, 6, 0, 0, 0, 0, 0, 11, 16, 5, 0, 0, 0, 0, 4, 16, 16, 2, 0, 0,
        0, 0, 8, 16, 16, 4, 0, 0, 0, 0, 0, 16, 16, 4, 0, 0, 0, 0, 0, 14, 16, 6, 0, 0,
        0, 0, 0, 12, 16, 8, 0, 0, 0, 0, 0, 3, 13, 9, 0, 0]  # fmt: skip
PREDICT_EXAMPLES: dict[str, dict[str, Any]] = {
    "batch": {
        "summary": "a batch (TF-Serving / KServe v1 style)",
        "value": {"instances": [_SEVEN, _ONE]},
    },
    "single": {"summary": "one image (shorthand)", "value": {"pixels": _SEVEN}},
}


Pixel = Annotated[float, Field(ge=PIXEL_MIN, le=PIXEL_MAX)]
Row = Annotated[list[Pixel], Field(min_length=N_FEATURES, max_length=N_FEATURES)]


def _exactly_one_key(schema: dict[str, Any]) -> None:
    """The JSON schema says what ``decode_rows`` accepts: exactly one of the two keys, no
    ``null`` (the ``| None`` below only lets pydantic express "either")."""
    for prop in schema["properties"].values():
        prop.update(next(s for s in prop.pop("anyOf") if s.get("type") != "null"))
        prop.pop("default", None)
    schema["oneOf"] = [{"required": ["instances"]}, {"required": ["pixels"]}]


class PredictRequest(BaseModel):
    """Either ``instances`` (a batch of rows) or ``pixels`` (one row), not both."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_key)

    instances: list[Row] | None = Field(
        default=None,
        min_length=1,
        description=f"rows of {EXPECTED_ROW}",
        examples=[[_SEVEN]],
    )
    pixels: Row | None = Field(
        default=None,
        description=f"one row: {EXPECTED_ROW}",
        examples=[_SEVEN],
    )


class Prediction(BaseModel):
    label: int = Field(description="argmax of the probabilities", examples=[7])
    probabilities: list[float] = Field(
        description=f"{N_CLASSES} class probabilities (softmax of the temperature-scaled logits)"
    )
    outlier: bool | None = Field(
        description="whether the row does not look like a digit (outlier_score over the "
        "version's threshold); null for a version exported without an outlier score",
        examples=[False],
    )
    outlier_score: float | None = Field(
        description="squared Mahalanobis distance of the pixels to the nearest digit class "
        "of the training rows (docs/training.md); null without an outlier score",
        examples=[21.5],
    )


class AnsweredBy(BaseModel):
    """Who answered: the head of every predict and explain answer."""

    model: str = Field(examples=["cnn"])
    version: str = Field(examples=["1"], description="the version that answered")
    alias: str | None = Field(
        examples=["production"],
        description="the alias the request was routed by (null when pinned with ?version=)",
    )
    device: str = Field(examples=["cpu"])
    runtime: str = Field(
        examples=["onnxruntime"], description="what ran the forward: torchscript or onnxruntime"
    )


class PredictResponse(AnsweredBy):
    predictions: list[Prediction] = Field(description="one per input row, in order")


class RowExplanation(BaseModel):
    label: int = Field(description="the predicted class (as /predict answers)", examples=[7])
    target: int = Field(description="the class explained: `?target=`, else `label`")
    probability: float = Field(description="the probability of `target` for the row as sent")
    attribution: list[list[float]] = Field(
        description="8x8, row-major, image rows top to bottom: p(target) of the row minus "
        "p(target) with that pixel set to 0; positive where the pixel supports `target`"
    )


class ExplainResponse(AnsweredBy):
    method: str = Field(examples=["occlusion"], description="how the maps were made")
    baseline: float = Field(examples=[0.0], description="the value an occluded pixel takes")
    explanations: list[RowExplanation] = Field(description="one per input row, in order")


class ModelVersion(BaseModel):
    version: int
    is_default: bool = Field(description="whether `production` names this version")
    aliases: list[str] = Field(description="the aliases naming this version")
    created: datetime
    runtime: str = Field(
        examples=["onnxruntime"], description="what runs its forward: torchscript or onnxruntime"
    )
    platform: str = Field(
        examples=["onnxruntime_onnx"],
        description="Triton's name of the file served: onnxruntime_onnx or pytorch_torchscript",
    )
    manifest: Manifest


class ShadowView(BaseModel):
    """How often a shadow version agreed with the version that answered (same label)."""

    version: int
    shadow_version: int
    compared: int
    agreed: int
    agreement_rate: float | None


class Traffic(BaseModel):
    """Who answers unpinned requests: weights per alias (empty: all to production), and the
    alias that scores the same rows in the shadow."""

    weights: dict[str, int]
    shadow: str | None
    shadow_stats: list[ShadowView] = Field(description="agreement per version pair so far")
    shadow_dropped: int = Field(description="requests not shadow-scored (queue full)")


class ModelInfo(BaseModel):
    name: str
    default_version: int = Field(description="the version `production` names")
    aliases: dict[str, int] = Field(description="alias -> version", examples=[{"production": 1}])
    traffic: Traffic
    ready: bool = Field(description="whether the production version is loaded and answers")
    reason: str | None = Field(description="why it is not ready (null when ready)")
    device: str
    versions: list[ModelVersion] = Field(description="the loaded versions, oldest first")


class ModelList(BaseModel):
    device: str
    models: list[ModelInfo]


def predict_openapi() -> dict[str, Any]:
    """The ``requestBody`` of the predict routes, with working examples, for ``openapi_extra``."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": PredictRequest.model_json_schema(),
                    "examples": PREDICT_EXAMPLES,
                }
            },
        }
    }
