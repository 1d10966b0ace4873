"""Predict from an image: ``POST /predict/image`` and ``POST /models/{name}/predict/image``.

The body is a PNG or JPEG, raw (``Content-Type: image/png`` or ``image/jpeg``) or as the
``file`` field of a ``multipart/form-data`` upload. It is reduced to load_digits' 64 values by
``service.inference.digit_image`` (steps in its docstring and in docs/console.md), then
classified like ``/predict``; the answer adds the 8x8 ``pixels`` it derived.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from service.errors import InvalidInput, UnsupportedMediaType
from service.http.deps import get_dataplane, get_settings
from service.http.policy import READ, needs
from service.http.routes.predict import (
    ERRORS,
    ROUTING_PARAMS,
    encode,
    infer,
    requested_target,
)
from service.http.schemas import PredictResponse
from service.inference.dataplane import DataPlane
from service.inference.digit_image import ImageLimits, reduce_image

router = APIRouter(tags=["predict"])

#: The body media types the image routes take (declared with their access).
IMAGE_TYPES = ("image/*", "multipart/form-data")
#: Images decoded at once (``app.state.image_decodes``); the others wait holding only their
#: encoded bytes. A decode peaks at ~12 bytes a pixel (a 4096x4096 RGBA PNG: 192 MB), so
#: the bound, not the number of requests, sets the memory images may take.
DECODES_AT_ONCE = 2
EXPECTED_TYPES = "Content-Type: image/png, image/jpeg, or multipart/form-data with a 'file' part"


class ImagePredictResponse(PredictResponse):
    pixels: list[int] = Field(
        description="the 64 load_digits values (0..16, row by row) derived from the image"
    )


_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown model or version"},
    413: {
        "description": "over max_image_bytes, max_image_pixels or max_image_side, or a "
        "decompression bomb (from the header, before decoding)"
    },
    415: {"description": "not image/png, image/jpeg or multipart/form-data"},
    422: {
        "description": "not a PNG or JPEG Pillow can read, a pixel mode without a fixed grey "
        "range (I, F), a side over 16 times the other, or no 'file' part"
    },
    503: ERRORS[503],
}
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "image/png": _BINARY,
            "image/jpeg": _BINARY,
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


@router.post(
    "/predict/image",
    summary="Classify a digit image with the default model",
    response_model=ImagePredictResponse,
    responses=_ERRORS,
    openapi_extra={**_BODY, "parameters": ROUTING_PARAMS},
)
@needs(READ, accepts=IMAGE_TYPES)
async def predict_image_default(request: Request) -> Response:
    """Reduce a PNG or JPEG to load_digits' 8x8 values and classify it (default model)."""
    dataplane = get_dataplane(request)
    return await _predict_image(request, dataplane, dataplane.default_model)


@router.post(
    "/models/{name}/predict/image",
    summary="Classify a digit image with a chosen model and version",
    response_model=ImagePredictResponse,
    responses=_ERRORS,
    openapi_extra={**_BODY, "parameters": ROUTING_PARAMS},
)
@needs(READ, accepts=IMAGE_TYPES)
async def predict_image(name: str, request: Request) -> Response:
    """Reduce a PNG or JPEG to load_digits' 8x8 values and classify it with model ``name``."""
    return await _predict_image(request, get_dataplane(request), name)


async def _predict_image(request: Request, dataplane: DataPlane, name: str) -> Response:
    """Routed as ``/predict`` is (``?version=``, ``?alias=``, ``X-Request-Id``), answered as
    it is, plus the ``pixels`` the image was reduced to."""
    version, alias = requested_target(request)
    settings = get_settings(request)
    limits = ImageLimits(
        settings.max_image_bytes, settings.max_image_pixels, settings.max_image_side
    )
    data = await _image_bytes(request)
    # Decoding a large image takes milliseconds to a second: off the event loop.
    async with request.app.state.image_decodes:
        pixels = await run_in_threadpool(reduce_image, data, limits)  # (64,) float32
    result = await infer(request, dataplane, name, pixels.reshape(1, -1), version, alias)
    content = encode(result, pixels=[int(v) for v in pixels])
    return Response(content, media_type="application/json")


async def _image_bytes(request: Request) -> bytes:
    """The encoded image: the raw ``image/*`` body, or the multipart ``file`` part."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media.startswith("image/"):
        return await request.body()
    if media != "multipart/form-data":
        raise UnsupportedMediaType(
            f"Content-Type {media or 'none'!r} is not an image or a multipart upload",
            expected=EXPECTED_TYPES,
        )
    async with request.form(max_files=1, max_fields=8) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput(
                f"the multipart body has no file part named 'file' (parts: {sorted(form)})",
                expected=EXPECTED_TYPES,
            )
        return await upload.read()
