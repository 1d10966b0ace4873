"""Explanations: ``POST /models/{name}/explain``, an occlusion map per row.

Same body, key, routing (``?version=``, ``?alias=``, ``X-Request-Id``) and body errors as
``POST /models/{name}/predict`` (``decode.decode_rows``, ``predict.requested_target``); the
class to explain is the ``?target=`` query parameter (0..9; default: the predicted label).
At most ``DIGITS_MAX_EXPLAIN_ROWS`` rows a request: each row costs 65 rows of forward
(``service.inference.explain``, which also says how the map is made).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request, Response

from service.errors import InvalidInput, PayloadTooLarge
from service.http.decode import decode_rows
from service.http.deps import get_dataplane, get_settings
from service.http.numbers import parse_int
from service.http.policy import READ, needs
from service.http.routes.predict import ERRORS, ROUTING_PARAMS, answered_by, requested_target
from service.http.schemas import ExplainResponse, predict_openapi
from service.inference.explain import BASELINE, COPIES, METHOD, Explanation, explain
from training.digits import N_CLASSES

router = APIRouter(tags=["predict"])

SIDE = 8  # the image is 8 x 8 pixels, row by row
TARGET_PARAM = {
    "name": "target",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 0, "maximum": N_CLASSES - 1},
    "description": "the class to explain (default: each row's predicted label)",
}
#: The path's model name, with an example Swagger UI fills in for "Try it out".
ModelName = Annotated[
    str, Path(description="the model", openapi_examples={"cnn": {"value": "cnn"}})
]
_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    413: {
        "description": "body over DIGITS_MAX_BODY_BYTES, more rows than DIGITS_MAX_ROWS, or "
        "more than DIGITS_MAX_EXPLAIN_ROWS rows (each costs 65 rows of forward)"
    },
    422: {
        "description": "not 64 finite numbers in 0..16 per row (the error names the row), or "
        "a `target` that is not a class 0..9 (in the query; a body field is refused)"
    },
}


@router.post(
    "/models/{name}/explain",
    summary="Explain a model's answer: which pixels hold up a class (occlusion)",
    response_model=ExplainResponse,
    responses=_ERRORS,
    openapi_extra={**predict_openapi(), "parameters": [*ROUTING_PARAMS, TARGET_PARAM]},
)
@needs(READ)
async def explain_rows(name: ModelName, request: Request) -> Response:
    """For each row, an 8x8 map: the probability of the class explained (``target``, else
    the predicted label) for the row as sent, minus the same with that pixel set to 0
    (background). Positive: the pixel supports the class. All rows and their 64 occluded
    copies go through the model in one forward (at most DIGITS_MAX_EXPLAIN_ROWS rows)."""
    dataplane = get_dataplane(request)
    version, alias = requested_target(request)
    target = requested_class(request)
    body = await request.body()
    rows = decode_rows(body, dataplane.max_rows)  # (N, 64) float32, the predict checks
    refuse_body_target(body)
    limit = get_settings(request).max_explain_rows
    if len(rows) > limit:
        raise PayloadTooLarge(
            f"instances: {len(rows)} rows, at most {limit} rows per explain request (each "
            f"costs {COPIES} rows of forward)",
            expected=f"at most {limit} rows (DIGITS_MAX_EXPLAIN_ROWS); split larger batches",
        )
    request_id = request.headers.get("x-request-id")
    result = await explain(
        dataplane, name, version, rows, target=target, alias=alias, request_id=request_id
    )
    return Response(encode(result), media_type="application/json")


def requested_class(request: Request) -> int | None:
    """``?target=``: a class 0..9, or ``None`` (explain the predicted label)."""
    raw = request.query_params.get("target")
    if raw is None:
        return None
    return parse_int(raw, "query.target", minimum=0, maximum=N_CLASSES - 1)


def refuse_body_target(body: bytes) -> None:
    """A ``target`` in the body would be ignored by the decoder: say where it goes instead."""
    if b'"target"' in body:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:  # what decode_rows read with the stdlib (1e400)
            data = json.loads(body)
        if isinstance(data, dict) and "target" in data:
            raise InvalidInput(
                "target: give the class to explain as the query parameter ?target=, "
                "not in the body",
                expected="POST /models/{name}/explain?target=3 with the predict body",
                parameter="target",
            )


def encode(result: Explanation) -> bytes:
    """The JSON answer (``ExplainResponse``)."""
    maps = result.maps
    explanations = [
        {"label": label, "target": target, "probability": p, "attribution": a.reshape(SIDE, SIDE)}
        for label, target, p, a in zip(
            maps.labels.tolist(),
            maps.targets.tolist(),
            maps.probabilities,  # float32, written as predict writes its rows
            maps.attributions,
            strict=True,
        )
    ]
    body = {
        **answered_by(result),
        "method": METHOD,
        "baseline": BASELINE,
        "explanations": explanations,
    }
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
