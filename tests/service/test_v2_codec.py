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


def _well_formed(header: dict[str, Any], tail: bytes, with_length: bool) -> bool:
    """Whether ``header`` is plainly a valid request (judged here, not by the codec): one
    ``pixels`` input of an accepted datatype, shape [N, 64] with 1 <= N <= 4, N x 64 whole
    numbers 0..16 as JSON ``data``, no parameters, outputs or binary data, a string id if any."""
    inputs = header.get("inputs")
    if not (isinstance(inputs, list) and len(inputs) == 1 and isinstance(inputs[0], dict)):
        return False
    tensor = inputs[0]
    shape, data, datatype = tensor.get("shape"), tensor.get("data"), tensor.get("datatype")
    return (
        set(tensor) == {"name", "datatype", "shape", "data"}
        and tensor["name"] == "pixels"
        and isinstance(datatype, str)
        and datatype in INPUT_DTYPES
        and isinstance(shape, list)
        and len(shape) == 2
        and all(type(d) is int for d in shape)
        and 1 <= shape[0] <= 4
        and shape[1] == 64
        and isinstance(data, list)
        and len(data) == shape[0] * 64
        and all(type(v) is int and 0 <= v <= 16 for v in data)
        and set(header) <= {"inputs", "id"}
        and isinstance(header.get("id", ""), str)
        and not (with_length and tail)
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(header=header, tail=st.binary(max_size=600), with_length=st.booleans())
def test_any_request_decodes_or_is_refused_by_name(
    header: dict[str, Any], tail: bytes, with_length: bool
) -> None:
    """Generated headers, with or without binary data after them: rows of float32 (N, 64)
    in 0..16, or one of the two protocol errors; a plainly valid request is never refused and
    decodes to exactly its values."""
    head = json.dumps(header).encode()
    body, length = (head + tail, len(head)) if with_length else (head, None)
    valid = _well_formed(header, tail, with_length)
    try:
        request = decode_infer(body, length, max_rows=4)
    except (InvalidInput, PayloadTooLarge) as error:
        refused: str | None = error.message
    else:
        refused = None
    if refused is not None:
        assert not valid, f"a valid request was refused: {refused}"
        return
    assert request.rows.dtype == np.float32
    assert request.rows.shape[1] == 64
    assert request.rows.min() >= 0
    assert request.rows.max() <= 16
    assert request.outputs
    if valid:
        expected = np.array(header["inputs"][0]["data"], dtype=np.float32).reshape(-1, 64)
        np.testing.assert_array_equal(request.rows, expected)


@settings(max_examples=100, deadline=None)
@given(
    rows=st.integers(1, 4).flatmap(
        lambda n: st.lists(st.integers(0, 16), min_size=n * 64, max_size=n * 64)
    ),
    datatype=st.sampled_from(sorted(INPUT_DTYPES)),
    request_id=st.one_of(st.none(), st.text(max_size=8)),
)
def test_a_valid_request_decodes_to_its_values(
    rows: list[int], datatype: str, request_id: str | None
) -> None:
    """Whole pixels 0..16 in any accepted datatype decode to exactly those values, every
    output asked for as JSON, with the request's id."""
    tensor = {"name": "pixels", "datatype": datatype, "shape": [len(rows) // 64, 64], "data": rows}
    header: dict[str, Any] = {"inputs": [tensor]}
    if request_id is not None:
        header["id"] = request_id
    request = decode_infer(json.dumps(header).encode(), None, max_rows=4)
    np.testing.assert_array_equal(request.rows, np.array(rows, dtype=np.float32).reshape(-1, 64))
    every = ("probabilities", "label", "outlier", "outlier_score")  # none asked: all, as JSON
    assert request.outputs == tuple((name, False) for name in every)
    assert request.id == request_id
