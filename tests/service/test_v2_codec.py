"""``decode_infer`` on generated requests: a well-formed request decodes to its rows, anything
else is an ``InvalidInput`` or ``PayloadTooLarge`` (a 400 or 413 on /v2), never another error."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.errors import InvalidInput, PayloadTooLarge
from service.http.v2_codec import decode_infer
from service.http.v2_input import INPUT_DTYPES

value = st.one_of(
    st.integers(0, 16),
    st.floats(0, 16),
    st.floats(),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.text(max_size=2),
    st.none(),
)
anything = st.recursive(value, lambda inner: st.lists(inner, max_size=3), max_leaves=8)
datatype = st.one_of(st.sampled_from([*INPUT_DTYPES, "BOOL", "BYTES"]), anything)
shape = st.one_of(st.tuples(st.integers(-1, 5), st.sampled_from([64, 63])).map(list), anything)
tensor = st.fixed_dictionaries(
    {"name": st.sampled_from(["pixels", "x"]), "datatype": datatype, "shape": shape},
    optional={
        "data": st.one_of(
            st.lists(st.integers(0, 16), min_size=64, max_size=64),
            st.lists(value, min_size=60, max_size=130),
            anything,
        ),
        "parameters": st.one_of(
            st.fixed_dictionaries({"binary_data_size": st.one_of(st.integers(-4, 600), anything)}),
            anything,
        ),
    },
)
header = st.fixed_dictionaries(
    {"inputs": st.one_of(st.lists(tensor, min_size=1, max_size=2), anything)},
    optional={
        "id": anything,
        "parameters": st.one_of(st.fixed_dictionaries({"binary_data_output": anything}), anything),
        "outputs": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {"name": st.sampled_from(["label", "probabilities", "score"])},
                    optional={"parameters": st.dictionaries(st.text(max_size=12), anything)},
                ),
                max_size=3,
            ),
            anything,
        ),
    },
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(header=header, tail=st.binary(max_size=600), with_length=st.booleans())
def test_any_request_decodes_or_is_refused_by_name(
    header: dict[str, Any], tail: bytes, with_length: bool
) -> None:
    """Generated headers, with or without binary data after them: rows of float32 (N, 64)
    in 0..16, or one of the two protocol errors."""
    head = json.dumps(header).encode()
    body, length = (head + tail, len(head)) if with_length else (head, None)
    try:
        request = decode_infer(body, length, max_rows=4)
    except (InvalidInput, PayloadTooLarge) as error:
        refused: InvalidInput | PayloadTooLarge | None = error
    else:
        refused = None
    if refused is not None:
        assert refused.message  # a message naming the fault
        return
    assert request.rows.dtype == np.float32
    assert request.rows.shape[1] == 64
    assert request.rows.min() >= 0
    assert request.rows.max() <= 16
    assert request.outputs
