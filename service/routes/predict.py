"""Predict: ``POST /predict`` (the default model) and ``POST /models/{name}/predict``.

The body is decoded with orjson + numpy (``schemas.decode_rows``), not pydantic, because this
is the hot path; ``PredictRequest`` still documents it in OpenAPI, with working examples.
For the same reason the handlers read ``app.state.dataplane`` instead of a ``Depends``
(each dependency costs the request a few microseconds of solving).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response

from service.dataplane import DataPlane, InferenceResult
from service.schemas import PredictResponse, decode_rows, predict_openapi

router = APIRouter(tags=["predict"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown model or version; the error lists those that exist"},
    413: {"description": "body over DIGITS_MAX_BODY_BYTES or more rows than DIGITS_MAX_ROWS"},
    422: {"description": "not 64 finite numbers in 0..16 per row; the error names the row"},
}
VersionQuery = Annotated[
    int | None, Query(ge=1, description="model version (default: the model's default version)")
]


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses=_ERRORS,
    openapi_extra=predict_openapi(),
)
async def predict_default(request: Request) -> Response:
    """Classify digits with the default model (DIGITS_DEFAULT_MODEL)."""
    dataplane: DataPlane = request.app.state.dataplane
    return await _predict(request, dataplane, dataplane.default_model, None)


@router.post(
    "/models/{name}/predict",
    response_model=PredictResponse,
    responses=_ERRORS,
    openapi_extra=predict_openapi(),
)
async def predict(request: Request, name: str, version: VersionQuery = None) -> Response:
    """Classify digits with model ``name`` (its default version unless ``version`` is given)."""
    dataplane: DataPlane = request.app.state.dataplane
    return await _predict(request, dataplane, name, version)


async def _predict(
    request: Request, dataplane: DataPlane, name: str, version: int | None
) -> Response:
    rows = decode_rows(await request.body(), dataplane.max_rows)  # (N, 64) float32
    result = await dataplane.infer(name, version, rows)
    return Response(_encode(result), media_type="application/json")


def _encode(result: InferenceResult) -> bytes:
    probabilities = result.probabilities  # (N, 10) float32, C-contiguous rows
    predictions = [
        {"label": label, "probabilities": row}
        for label, row in zip(result.labels.tolist(), probabilities, strict=True)
    ]
    body = {
        "model": result.model,
        "version": str(result.version),
        "device": result.device,
        "predictions": predictions,
    }
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
