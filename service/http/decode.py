"""The fast decoder of predict bodies: ``decode_rows`` (JSON -> float32 (N, 64)) and the one
pixel rule, ``check_pixels``.

The predict routes do not validate through pydantic (``schemas.PredictRequest`` documents the
body), because it is several times slower on rows of 64 floats: ``decode_rows`` parses the body
with orjson and checks it with numpy, naming the bad row ("instances[3]: ...").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import chain
from typing import Any

import numpy as np
import orjson

from service.errors import InvalidInput, PayloadTooLarge
from training.digits import N_FEATURES, PIXEL_MAX, PIXEL_MIN

_RANGE = f"{PIXEL_MIN:g}..{PIXEL_MAX:g}"
EXPECTED_ROW = (
    f"{N_FEATURES} finite numbers in {_RANGE} per row (raw sklearn load_digits pixels, "
    "8x8 image flattened row by row)"
)
EXPECTED_BODY = (
    f'{{"instances": [[{N_FEATURES} numbers], ...]}} or {{"pixels": [{N_FEATURES} numbers]}}'
)


def decode_rows(body: bytes, max_rows: int) -> np.ndarray:
    """Parse a predict body into float32 (N, 64); ``InvalidInput`` naming the bad row otherwise."""
    field, rows = _body_rows(_loads(body), max_rows)
    # JSON true/false would be coerced to 1/0 by numpy: look for them only when present.
    if b"true" in body or b"false" in body:
        _reject_non_numbers(field, rows)
    elif body.count(b'"') == 2 and b"null" not in body:  # only numbers and lists: fast path
        array = _flat_rows(rows)
        if array is not None:
            return _check_range(field, array)
    try:
        array = np.array(rows)
    except ValueError:  # ragged rows
        array = np.empty(0, dtype=object)
    if array.ndim != 2 or array.shape[1] != N_FEATURES or array.dtype.kind not in "iuf":
        _reject_non_numbers(field, rows)
        try:
            array = np.array(rows, dtype=np.float64)  # numbers only, e.g. integers beyond int64
        except OverflowError:  # an integer beyond float64 (~1.8e308): name it
            _reject_huge_integers(field, rows)
            raise
    return _check_range(field, array)


def _body_rows(data: Any, max_rows: int) -> tuple[str, list[Any]]:
    """The field a predict body uses (``pixels``: one row, ``instances``: a list of rows) and
    its rows, not yet checked."""
    if not isinstance(data, dict) or ("instances" in data) == ("pixels" in data):
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise InvalidInput(
            f"the body must have exactly one of the keys 'instances' or 'pixels', got {keys}",
            expected=EXPECTED_BODY,
        )
    if "pixels" in data:
        field, rows = "pixels", [data["pixels"]]
    else:
        field, rows = "instances", data["instances"]
        if not isinstance(rows, list) or not rows:
            raise InvalidInput(
                "instances: expected a non-empty list of rows, got "
                + ("an empty list" if isinstance(rows, list) else type(rows).__name__),
                expected=EXPECTED_BODY,
            )
    if len(rows) > max_rows:
        raise PayloadTooLarge(
            f"instances: {len(rows)} rows, at most {max_rows} rows per request",
            expected=f"at most {max_rows} rows; split larger batches",
        )
    return field, rows


def _flat_rows(rows: list[Any]) -> np.ndarray | None:
    """(N, 64) float64 from rows of 64 plain numbers, in one pass (``np.array`` on nested lists
    takes ~1.5x as long); None when anything else is there, for the checks that name it."""
    try:
        if any(len(row) != N_FEATURES for row in rows):
            return None
        flat = np.fromiter(
            chain.from_iterable(rows), dtype=np.float64, count=len(rows) * N_FEATURES
        )
    except (TypeError, ValueError, OverflowError):  # a number, null or list where a value goes
        return None
    return flat.reshape(len(rows), N_FEATURES)


def _label(field: str, index: int) -> str:
    return field if field == "pixels" else f"{field}[{index}]"


def _loads(body: bytes) -> Any:
    """orjson first; for bodies it refuses, stdlib json tells NaN/Infinity apart from garbage."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        error = exc
    if not body.strip():
        raise InvalidInput("the request body is empty", expected=EXPECTED_BODY)
    try:  # accepts NaN, Infinity and 1e400, so the range check can name the row
        return json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidInput(f"the body is not valid JSON: {error}", expected=EXPECTED_BODY) from None


def _reject_non_numbers(field: str, rows: list[Any]) -> None:
    """Raise for the first row that is not a list of 64 numbers (bools and strings included)."""
    for index, row in enumerate(rows):
        where = _label(field, index)
        if not isinstance(row, list):
            raise InvalidInput(
                f"{where}: expected a list of {N_FEATURES} numbers, got {type(row).__name__}",
                expected=EXPECTED_ROW,
            )
        if len(row) != N_FEATURES:
            raise InvalidInput(
                f"{where}: expected {N_FEATURES} values, got {len(row)}", expected=EXPECTED_ROW
            )
        for position, value in enumerate(row):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInput(
                    f"{where}[{position}]: expected a number, got {orjson.dumps(value).decode()}",
                    expected=EXPECTED_ROW,
                )


def _reject_huge_integers(field: str, rows: list[Any]) -> None:
    """Raise for the first integer too large for a float64 (JSON allows any number of digits)."""
    for index, row in enumerate(rows):
        for position, value in enumerate(row):
            try:
                float(value)
            except OverflowError:
                digits = int(value.bit_length() * 0.30103) + 1
                raise InvalidInput(
                    f"{_label(field, index)}[{position}]: pixel values must be finite numbers "
                    f"in {_RANGE}, got an integer of about {digits} digits",
                    expected=EXPECTED_ROW,
                ) from None


def _check_range(field: str, array: np.ndarray) -> np.ndarray:
    """float32 rows once every value is in range (``check_pixels``), rows named as the body
    names them (``instances[3]``)."""
    return check_pixels(array, lambda index: _label(field, index))


def check_pixels(array: np.ndarray, label: Callable[[int], str]) -> np.ndarray:
    """float32 rows (N, 64) once every value is finite and in 0..16; ``InvalidInput`` naming
    the first bad row (``label(index)``) otherwise. Checked before the cast (16.0000001 is not
    16 in float64, though it is in float32). The one pixel rule of every protocol."""
    # The common case in two reductions: NaN fails both comparisons, and so does +-inf.
    if array.min() >= PIXEL_MIN and array.max() <= PIXEL_MAX:
        return array.astype(np.float32)  # (N, 64)
    values = array.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        index = int(np.flatnonzero(~finite.all(axis=1))[0])
        value = float(values[index][~finite[index]][0])
        raise InvalidInput(
            f"{label(index)}: pixel values must be finite numbers in {_RANGE}, got {value:g}",
            expected=EXPECTED_ROW,
        )
    low, high = values.min(axis=1), values.max(axis=1)  # (N,)
    index = int(np.flatnonzero((low < PIXEL_MIN) | (high > PIXEL_MAX))[0])
    got = f"max {high[index]:.10g}" if high[index] > PIXEL_MAX else f"min {low[index]:.10g}"
    hint = "; send raw load_digits values (0..16), not 0..255" if 16 < high[index] <= 255 else ""
    raise InvalidInput(
        f"{label(index)}: pixel values must be {_RANGE}, got {got}{hint}",
        expected=EXPECTED_ROW,
    )
