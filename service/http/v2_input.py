"""The one input tensor of an Open Inference Protocol request, ``pixels``, read into float32
``(N, 64)`` rows: from JSON ``data`` (flat or nested), from binary tensor data after the JSON
header, or from a raw binary body. Every fault is an ``InvalidInput`` naming what is wrong; too
many rows is ``PayloadTooLarge``. Values are the raw 0..16 pixels checked by
``decode.check_pixels``, as on ``/predict``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from service.errors import InvalidInput, PayloadTooLarge
from service.http.decode import check_pixels
from training.digits import N_FEATURES

INPUT = "pixels"
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


def raw_rows(body: bytes, max_rows: int) -> np.ndarray:
    """The rows of a body of binary data only (header length 0): FP32 rows of the input."""
    if not body or len(body) % _ROW_BYTES:
        raise InvalidInput(
            f"a raw binary request (Inference-Header-Content-Length: 0) must hold whole FP32 "
            f"rows of {_ROW_BYTES} bytes, got {len(body)} bytes",
            expected=f"N x {_ROW_BYTES} bytes: little-endian FP32 {_SHAPE}",
        )
    n = len(body) // _ROW_BYTES
    _check_rows(n, max_rows)
    array = np.frombuffer(body, dtype="<f4").reshape(n, N_FEATURES)
    return check_pixels(array, _row_label)


def input_rows(inputs: Any, binary: memoryview, max_rows: int, *, maybe_bools: bool) -> np.ndarray:
    """The rows of the request's ``inputs``: JSON ``data``, or ``binary`` data after the header."""
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        got = f"{len(inputs)} inputs" if isinstance(inputs, list) else kind(inputs)
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
            f"input 'pixels': 'shape' must be a list of integers, got {show(shape)}",
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
            f"input 'pixels': 'parameters' must be an object, got {kind(parameters)}",
            expected='"parameters": {"binary_data_size": <bytes>}',
        )
    size = parameters.get("binary_data_size")
    if size is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInput(
            f"input 'pixels': binary_data_size must be a byte count, got {show(size)}",
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
            f"input 'pixels': 'data' must be a list of numbers (flat or nested), got {kind(data)}",
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
                f"input 'pixels': 'data' value {position} is {show(value)}, not a number",
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


def kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def show(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, str | int | float | bool | None) else None
    return text[:40] if text is not None else kind(value)
