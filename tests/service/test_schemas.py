"""``decode_rows`` against the documented predict body (``PredictRequest``'s JSON schema):
every body the schema accepts is decoded to the same rows, every body it refuses is a 4xx."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from service.errors import InvalidInput, PayloadTooLarge
from service.http.decode import decode_rows
from service.http.schemas import PredictRequest

VALIDATOR = Draft202012Validator(PredictRequest.model_json_schema())

pixel = st.one_of(
    st.integers(0, 16),
    st.floats(0, 16),
    st.floats(allow_nan=False, allow_infinity=False),  # mostly out of range
    st.sampled_from([16.0000001, -0.0, -1e-9, 255, 17]),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.text(max_size=2),
    st.none(),
)
row = st.one_of(
    st.lists(st.integers(0, 16), min_size=64, max_size=64),
    st.lists(st.floats(0, 16), min_size=64, max_size=64),
    st.lists(pixel, min_size=63, max_size=65),
    pixel,
)
body = st.one_of(
    st.fixed_dictionaries({"pixels": row}),
    st.fixed_dictionaries({"instances": st.lists(row, max_size=3)}),
    st.fixed_dictionaries({"instances": st.lists(row, max_size=2), "pixels": row}),
    st.fixed_dictionaries({"pixels": row}, optional={"other": st.integers()}),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=2),
    st.none(),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body)
def test_decode_rows_accepts_exactly_what_the_schema_accepts(data: Any) -> None:
    """Schema-valid bodies decode to their rows as float32; schema-invalid ones are a 4xx."""
    raw = json.dumps(data, allow_nan=False).encode()
    if not VALIDATOR.is_valid(data):
        with pytest.raises((InvalidInput, PayloadTooLarge)):
            decode_rows(raw, max_rows=1_000_000)
        return
    rows = decode_rows(raw, max_rows=1_000_000)
    expected = [data["pixels"]] if "pixels" in data else data["instances"]
    np.testing.assert_array_equal(rows, np.asarray(expected, dtype=np.float32))
    assert rows.dtype == np.float32


@pytest.mark.parametrize("value", [16.0000001, -1e-12])
def test_a_value_just_outside_the_range_is_refused(value: float) -> None:
    """A value outside 0..16 only by float32 rounding is still refused, as the schema says."""
    with pytest.raises(InvalidInput, match=r"pixel values must be 0\.\.16"):
        decode_rows(json.dumps({"pixels": [value] + [0] * 63}).encode(), max_rows=1)
