"""Open Inference Protocol bodies <-> the data plane's rows and results.

``decode_infer`` reads an inference request (JSON, or JSON followed by binary tensor data as in
Triton's binary tensor data extension, or a raw binary body) into float32 ``(N, 64)`` rows, the
outputs asked for and the request ``id``; ``encode_infer`` writes an ``InferenceResult`` back,
each output as JSON ``data`` or as binary data after the JSON, as asked. Every fault is an
``InvalidInput`` (400 on ``/v2``) naming what is wrong; too many rows is ``PayloadTooLarge``.

The model's tensors (``MODEL_INPUTS``, ``MODEL_OUTPUTS``): input ``pixels`` FP32 ``[-1, 64]``
(FP16, FP64 and the integer datatypes are accepted and converted; values are the raw 0..16
pixels checked by ``schemas.check_pixels``, as on ``/predict``); outputs ``probabilities``
FP32 ``[-1, 10]``, ``label`` INT64 ``[-1]``, and ``outlier`` BOOL ``[-1]`` and
``outlier_score`` FP32 ``[-1]`` (left out for a version exported without an outlier score).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from service.errors import InvalidInput, PayloadTooLarge
from service.http.schemas import check_pixels
from service.inference.dataplane import InferenceResult
from training.data import N_CLASSES, N_FEATURES

INPUT = "pixels"
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

#: Input datatypes accepted (converted to float32) and their little-endian layout.
INPUT_DTYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(code)
    for name, code in {
        "FP32": "<f4", "FP64": "<f8", "FP16": "<f2",
        "INT8": "i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
        "UINT8": "u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    }.items()
}  # fmt: skip
_ACCEPTED = "FP32 (or FP64, FP16, INT8..INT64, UINT8..UINT64: converted)"
_SHAPE = f"[N, {N_FEATURES}]: N rows of {N_FEATURES} raw pixels 0..16"
_ROW_BYTES = N_FEATURES * 4  # one FP32 row, the layout of a raw binary body
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
        return _raw_binary(body, max_rows)
    else:
        header_bytes, binary = body[:header_length], memoryview(body)[header_length:]
    header = _loads(header_bytes)
    if not isinstance(header, dict):
        raise InvalidInput(
            f"the inference request must be a JSON object, got {_kind(header)}",
            expected='{"inputs": [{"name": "pixels", "shape": [N, 64], ...}]}',
        )
    rows = _rows(
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
    response["outputs"] = outputs
    header = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return header, None
    return b"".join([header, *blobs]), len(header)


def _raw_binary(body: bytes, max_rows: int) -> InferRequest:
    """A body of binary data only (header length 0): FP32 rows of the one input; every
    output comes back as binary data, as the extension says."""
    if not body or len(body) % _ROW_BYTES:
        raise InvalidInput(
            f"a raw binary request (Inference-Header-Content-Length: 0) must hold whole FP32 "
            f"rows of {_ROW_BYTES} bytes, got {len(body)} bytes",
            expected=f"N x {_ROW_BYTES} bytes: little-endian FP32 {_SHAPE}",
        )
    n = len(body) // _ROW_BYTES
    _check_rows(n, max_rows)
    array = np.frombuffer(body, dtype="<f4").reshape(n, N_FEATURES)
    rows = check_pixels(array, _row_label)
    return InferRequest(rows, _ALL_BINARY)


def _rows(inputs: Any, binary: memoryview, max_rows: int, *, maybe_bools: bool) -> np.ndarray:
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        got = f"{len(inputs)} inputs" if isinstance(inputs, list) else _kind(inputs)
        raise InvalidInput(
            f"'inputs' must be a list of one tensor, 'pixels'; got {got}",
            expected='"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [N, 64], '
            '"data": [...]}]',
        )
    tensor: dict[str, Any] = inputs[0]
    if tensor.get("name") != INPUT:
        raise InvalidInput(
            f"unknown input {tensor.get('name')!r}: the model's only input is 'pixels'",
            expected=f"an input named 'pixels', {_SHAPE}",
        )
    datatype = tensor.get("datatype")
    dtype = INPUT_DTYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None or not isinstance(datatype, str):
        raise InvalidInput(
            f"input 'pixels': datatype {datatype!r} is not accepted", expected=_ACCEPTED
        )
    n = _shape(tensor.get("shape"))
    _check_rows(n, max_rows)
    size = _binary_size(tensor.get("parameters"))
    if size is None:
        if binary:
            raise InvalidInput(
                f"the body holds {len(binary)} bytes after the JSON header but input 'pixels' "
                "announces no binary_data_size",
                expected='"parameters": {"binary_data_size": <bytes>} on the input',
            )
        array = _json_data(tensor.get("data"), datatype, n, maybe_bools=maybe_bools)
    elif "data" in tensor:
        raise InvalidInput(
            "input 'pixels' has both 'data' and a binary_data_size; send one",
            expected="JSON 'data', or binary data announced by binary_data_size",
        )
    else:
        array = _binary_data(binary, size, dtype, datatype, n)
    return check_pixels(array.reshape(n, N_FEATURES), _row_label)


def _row_label(index: int) -> str:
    return f"input 'pixels' row {index}"


def _check_rows(n: int, max_rows: int) -> None:
    if n > max_rows:
        raise PayloadTooLarge(
            f"input 'pixels': {n} rows, at most {max_rows} rows per request",
            expected=f"at most {max_rows} rows; split larger batches",
        )


def _shape(shape: Any) -> int:
    """The number of rows of a ``[N, 64]`` shape."""
    if not (
        isinstance(shape, list)
        and all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
    ):
        raise InvalidInput(
            f"input 'pixels': 'shape' must be a list of integers, got {_show(shape)}",
            expected=_SHAPE,
        )
    if len(shape) != 2 or shape[1] != N_FEATURES or shape[0] < 0:
        raise InvalidInput(
            f"input 'pixels': shape {shape} does not match the model's [-1, {N_FEATURES}]",
            expected=_SHAPE,
        )
    if shape[0] == 0:
        raise InvalidInput("input 'pixels': shape [0, 64] holds no rows", expected=_SHAPE)
    return int(shape[0])


def _binary_size(parameters: Any) -> int | None:
    if parameters is None:
        return None
    if not isinstance(parameters, dict):
        raise InvalidInput(
            f"input 'pixels': 'parameters' must be an object, got {_kind(parameters)}",
            expected='"parameters": {"binary_data_size": <bytes>}',
        )
    size = parameters.get("binary_data_size")
    if size is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInput(
            f"input 'pixels': binary_data_size must be a byte count, got {_show(size)}",
            expected="a non-negative integer",
        )
    return size


def _binary_data(
    binary: memoryview, size: int, dtype: np.dtype[Any], datatype: str, n: int
) -> np.ndarray:
    needed = n * N_FEATURES * dtype.itemsize
    if size != needed:
        raise InvalidInput(
            f"input 'pixels': binary_data_size is {size} bytes, but shape [{n}, {N_FEATURES}] "
            f"of {datatype} takes {needed} bytes",
            expected=f"binary_data_size = rows x {N_FEATURES} x {dtype.itemsize}",
        )
    if size > len(binary):
        raise InvalidInput(
            f"input 'pixels': binary_data_size {size} is beyond the body, which holds "
            f"{len(binary)} bytes after the JSON header",
            expected="the tensor's bytes after the JSON header",
        )
    if len(binary) > size:
        raise InvalidInput(
            f"the body holds {len(binary) - size} bytes more than the inputs' binary_data_size",
            expected="exactly the announced binary data after the JSON header",
        )
    return np.frombuffer(binary, dtype=dtype, count=n * N_FEATURES)


def _json_data(data: Any, datatype: str, n: int, *, maybe_bools: bool) -> np.ndarray:
    """The ``data`` of the input (flat or nested, row-major) as numbers, not yet range-checked."""
    if not isinstance(data, list):
        raise InvalidInput(
            f"input 'pixels': 'data' must be a list of numbers (flat or nested), got {_kind(data)}",
            expected="'data', or binary data announced by binary_data_size",
        )
    try:
        array = np.array(data)
    except ValueError:  # ragged nesting
        array = np.empty(0, dtype=object)
    # numpy coerces true/false to numbers: look for them only when the header has one.
    if array.dtype.kind not in "iuf" or (maybe_bools and _has_bool(data)):
        array = _numbers_or_raise(data)
    if array.size != n * N_FEATURES:
        raise InvalidInput(
            f"input 'pixels': 'data' holds {array.size} values, but shape [{n}, {N_FEATURES}] "
            f"takes {n * N_FEATURES}",
            expected="as many values as the product of the shape",
        )
    if datatype[0] in "IU" and array.dtype.kind == "f":
        fraction = array[array != np.trunc(array)]
        if fraction.size:
            raise InvalidInput(
                f"input 'pixels': datatype {datatype} but 'data' holds {fraction[0]:g}",
                expected=f"whole numbers for {datatype}, or datatype FP32",
            )
    # float64, as /predict decodes: numpy compares its integer scalars with the float bounds
    # of the pixel check several times slower.
    return array.astype(np.float64, copy=False)


def _has_bool(data: list[Any]) -> bool:
    return any(isinstance(v, bool) or (isinstance(v, list) and _has_bool(v)) for v in data)


def _numbers_or_raise(data: list[Any]) -> np.ndarray:
    """``data`` as float64 when it holds only numbers in regular nesting; else raise naming
    the first value that is not a number, or the ragged nesting."""
    flat: list[Any] = []
    _flatten(data, flat)
    for position, value in enumerate(flat):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(
                f"input 'pixels': 'data' value {position} is {_show(value)}, not a number",
                expected="numbers (JSON true/false, strings and null are not pixels)",
            )
    try:
        return np.array(data, dtype=np.float64)
    except ValueError:
        raise InvalidInput(
            "input 'pixels': 'data' is ragged (nested lists of different lengths)",
            expected="a flat list, or lists nested as the shape",
        ) from None
    except OverflowError:  # an integer beyond float64: JSON allows any number of digits
        raise InvalidInput(
            "input 'pixels': pixel values must be finite numbers in 0..16, got an integer "
            "beyond the range of FP64",
            expected="numbers in 0..16",
        ) from None


def _flatten(data: list[Any], into: list[Any]) -> None:
    for value in data:
        if isinstance(value, list):
            _flatten(value, into)
        else:
            into.append(value)


def _outputs(header: dict[str, Any]) -> tuple[tuple[str, bool], ...]:
    """The outputs asked for (all by default), each with whether it comes back as binary."""
    parameters = header.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidInput(
            f"'parameters' must be an object, got {_kind(parameters)}",
            expected='"parameters": {"binary_data_output": true}',
        )
    default = _flag(parameters, "binary_data_output", "request parameter")
    requested = header.get("outputs")
    if requested is None or requested == []:
        return _ALL_BINARY if default else _ALL_JSON
    if not isinstance(requested, list):
        raise InvalidInput(
            f"'outputs' must be a list, got {_kind(requested)}",
            expected='"outputs": [{"name": "label"}, {"name": "probabilities"}]',
        )
    chosen: dict[str, bool] = {}
    for output in requested:
        name = output.get("name") if isinstance(output, dict) else None
        if name not in OUTPUT_NAMES:
            raise InvalidInput(
                f"unknown output {_show(name)}: the model's outputs are " + ", ".join(OUTPUT_NAMES),
                expected='"outputs": [{"name": "label"}, {"name": "probabilities"}]',
            )
        if name in chosen:
            raise InvalidInput(f"output {name!r} is asked for twice", expected="each once")
        params = output.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise InvalidInput(
                f"output {name!r}: 'parameters' must be an object, got {_kind(params)}",
                expected='"parameters": {"binary_data": true}',
            )
        if params and "classification" in params:
            raise InvalidInput(
                f"output {name!r}: the classification extension is not supported",
                expected="the 'label' output: the class of each row",
            )
        chosen[name] = default if not params or "binary_data" not in params else (
            _flag(params, "binary_data", f"output {name!r} parameter")
        )  # fmt: skip
    return tuple(chosen.items())


def _flag(parameters: dict[str, Any] | None, key: str, where: str) -> bool:
    value = (parameters or {}).get(key, False)
    if not isinstance(value, bool):
        raise InvalidInput(f"{where} {key} must be true or false, got {_show(value)}")
    return value


def _request_id(header: dict[str, Any]) -> str | None:
    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput(f"'id' must be a string, got {_show(request_id)}", expected='"id": "42"')
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


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _show(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, str | int | float | bool | None) else None
    return text[:40] if text is not None else _kind(value)
