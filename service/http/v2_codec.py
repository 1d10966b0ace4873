"""Open Inference Protocol bodies <-> the data plane's rows and results.

``decode_infer`` reads an inference request (JSON, or JSON followed by binary tensor data as in
Triton's binary tensor data extension, or a raw binary body) into float32 ``(N, 64)`` rows, the
outputs asked for and the request ``id``; ``encode_infer`` writes an ``InferenceResult`` back,
each output as JSON ``data`` or as binary data after the JSON, as asked. Every fault is an
``InvalidInput`` (400 on ``/v2``) naming what is wrong; too many rows is ``PayloadTooLarge``.
The input tensor itself is read by ``v2_input``.

The model's tensors (``MODEL_INPUTS``, ``MODEL_OUTPUTS``): input ``pixels`` FP32 ``[-1, 64]``
(FP16, FP64 and the integer datatypes are accepted and converted; values are the raw 0..16
pixels checked by ``decode.check_pixels``, as on ``/predict``); outputs ``probabilities``
FP32 ``[-1, 10]``, ``label`` INT64 ``[-1]``, and ``outlier`` BOOL ``[-1]`` and
``outlier_score`` FP32 ``[-1]`` (left out for a version exported without an outlier score).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from service.errors import InvalidInput
from service.http.v2_input import INPUT, input_rows, kind, raw_rows, show
from service.inference.dataplane import InferenceResult
from training.digits import N_CLASSES, N_FEATURES

MODEL_INPUTS = [{"name": INPUT, "datatype": "FP32", "shape": [-1, N_FEATURES]}]
MODEL_OUTPUTS = [
    {"name": "probabilities", "datatype": "FP32", "shape": [-1, N_CLASSES]},
    {"name": "label", "datatype": "INT64", "shape": [-1]},
    {"name": "outlier", "datatype": "BOOL", "shape": [-1]},
    {"name": "outlier_score", "datatype": "FP32", "shape": [-1]},
]
#: Outputs a version exported without an outlier score does not have (left out of its answer).
OUTLIER_OUTPUTS = ("outlier", "outlier_score")
#: Each output's datatype and its little-endian layout as binary data.
_LAYOUT = {"FP32": "<f4", "INT64": "<i8", "BOOL": "|b1"}
_DATATYPE = {str(o["name"]): str(o["datatype"]) for o in MODEL_OUTPUTS}
OUTPUT_NAMES = tuple(str(o["name"]) for o in MODEL_OUTPUTS)

_ALL_JSON = tuple((name, False) for name in OUTPUT_NAMES)
_ALL_BINARY = tuple((name, True) for name in OUTPUT_NAMES)


@dataclass(frozen=True, slots=True)
class InferRequest:
    """What an inference request asks: its rows, which outputs (and whether each comes back
    as binary data), and its ``id``."""

    rows: np.ndarray  # (N, 64) float32
    outputs: tuple[tuple[str, bool], ...]  # (name, binary), in the order they come back
    id: str | None = None


def decode_infer(body: bytes, header_length: int | None, max_rows: int) -> InferRequest:
    """Parse an inference request; ``header_length`` is ``Inference-Header-Content-Length``
    (``None``: the body is all JSON; 0: the body is all binary data of the one input)."""
    if header_length is None:
        header_bytes, binary = body, memoryview(b"")
    elif header_length > len(body):
        raise InvalidInput(
            f"Inference-Header-Content-Length {header_length} is beyond the body, "
            f"which has {len(body)} bytes",
            expected="the length of the JSON header, at most the body's length",
        )
    elif header_length == 0:
        # every output comes back as binary data, as the extension says
        return InferRequest(raw_rows(body, max_rows), _ALL_BINARY)
    else:
        header_bytes, binary = body[:header_length], memoryview(body)[header_length:]
    header = _loads(header_bytes)
    if not isinstance(header, dict):
        raise InvalidInput(
            f"the inference request must be a JSON object, got {kind(header)}",
            expected='{"inputs": [{"name": "pixels", "shape": [N, 64], ...}]}',
        )
    rows = input_rows(
        header.get("inputs"),
        binary,
        max_rows,
        maybe_bools=b"true" in header_bytes or b"false" in header_bytes,
    )
    return InferRequest(rows, _outputs(header), _request_id(header))


def encode_infer(result: InferenceResult, request: InferRequest) -> tuple[bytes, int | None]:
    """The response body, and the length of its JSON part when binary data follows it."""
    tensors = {"probabilities": result.probabilities, "label": result.labels}
    if result.outliers is not None and result.outlier_scores is not None:
        tensors.update(outlier=result.outliers, outlier_score=result.outlier_scores)
    outputs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, binary in request.outputs:
        if name not in tensors:  # an outlier output of a version without an outlier score
            continue
        array = tensors[name]
        datatype = _DATATYPE[name]
        output: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if binary:
            data = array.astype(_LAYOUT[datatype], copy=False).tobytes()
            output["parameters"] = {"binary_data_size": len(data)}
            blobs.append(data)
        else:
            output["data"] = np.ascontiguousarray(array).ravel()
        outputs.append(output)
    response: dict[str, Any] = {"model_name": result.model, "model_version": str(result.version)}
    if request.id is not None:
        response["id"] = request.id
    if result.runtime is not None:
        response["parameters"] = {"runtime": result.runtime}
    response["outputs"] = outputs
    header = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return header, None
    return b"".join([header, *blobs]), len(header)


def _outputs(header: dict[str, Any]) -> tuple[tuple[str, bool], ...]:
    """The outputs asked for (all by default), each with whether it comes back as binary."""
    parameters = header.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidInput(
            f"'parameters' must be an object, got {kind(parameters)}",
            expected='"parameters": {"binary_data_output": true}',
        )
    default = _flag(parameters, "binary_data_output", "request parameter")
    requested = header.get("outputs")
    if requested is None or requested == []:
        return _ALL_BINARY if default else _ALL_JSON
    if not isinstance(requested, list):
        raise InvalidInput(
            f"'outputs' must be a list, got {kind(requested)}",
            expected='"outputs": [{"name": "label"}, {"name": "probabilities"}]',
        )
    chosen: dict[str, bool] = {}
    for output in requested:
        name, binary = _output(output, default)
        if name in chosen:
            raise InvalidInput(f"output {name!r} is asked for twice", expected="each once")
        chosen[name] = binary
    return tuple(chosen.items())


def _output(output: Any, default: bool) -> tuple[str, bool]:
    """One entry of ``outputs``: its name, and whether it comes back as binary data."""
    name = output.get("name") if isinstance(output, dict) else None
    if name not in OUTPUT_NAMES:
        raise InvalidInput(
            f"unknown output {show(name)}: the model's outputs are " + ", ".join(OUTPUT_NAMES),
            expected='"outputs": [{"name": "label"}, {"name": "probabilities"}]',
        )
    params = output.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise InvalidInput(
            f"output {name!r}: 'parameters' must be an object, got {kind(params)}",
            expected='"parameters": {"binary_data": true}',
        )
    if params and "classification" in params:
        raise InvalidInput(
            f"output {name!r}: the classification extension is not supported",
            expected="the 'label' output: the class of each row",
        )
    if not params or "binary_data" not in params:
        return name, default
    return name, _flag(params, "binary_data", f"output {name!r} parameter")


def _flag(parameters: dict[str, Any] | None, key: str, where: str) -> bool:
    value = (parameters or {}).get(key, False)
    if not isinstance(value, bool):
        raise InvalidInput(f"{where} {key} must be true or false, got {show(value)}")
    return value


def _request_id(header: dict[str, Any]) -> str | None:
    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput(f"'id' must be a string, got {show(request_id)}", expected='"id": "42"')
    return request_id


def _loads(header: bytes) -> Any:
    """orjson first; stdlib json for what it refuses, so NaN reaches the pixel check by name."""
    try:
        return orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        error = exc
    if not header.strip():
        raise InvalidInput(
            "the inference request is empty", expected='{"inputs": [{"name": "pixels", ...}]}'
        )
    try:
        return json.loads(header)
    except (ValueError, RecursionError):
        raise InvalidInput(
            f"the inference request is not valid JSON: {error}",
            expected="a JSON object; with binary data, Inference-Header-Content-Length "
            "giving the JSON's length",
        ) from None
