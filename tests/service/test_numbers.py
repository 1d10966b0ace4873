"""Integers from a path, query or header (service/http/numbers.py): whatever a client writes
there (thousands of digits, a sign, a fraction, other scripts' digits), the answer is a 4xx
naming the parameter, never a 5xx or a traceback in the log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.errors import InvalidInput
from service.http.app import create_app
from service.http.numbers import MAX_DIGITS, parse_int, parse_number
from tests.conftest import make_settings

#: Valid values of the other path parameters, so that only the number under test is wrong.
PATH_VALUES = {"name": "cnn", "alias": "production", "job_id": "0" * 32, "fmt": "png"}
#: Headers that carry an integer (or a millisecond count) but are no OpenAPI parameter.
HEADERS = [
    ("post", "/v2/models/cnn/infer", "Inference-Header-Content-Length"),
    ("post", "/predict", "X-Request-Timeout-Ms"),
]
#: Digits of other scripts that ``int()`` would take: Arabic-Indic, fullwidth, Devanagari,
#: Bengali, mathematical bold.
FOREIGN_DIGITS = "٠١٢٣٤٥٦٧٨٩０１２３４５６７８９१२३৪৫𝟏𝟐"

# Numbers no integer parameter takes: huge, negative, fractional, exponent, other scripts.
bad_numbers = st.one_of(
    st.text(st.sampled_from("0123456789"), min_size=MAX_DIGITS + 1, max_size=6000).map(
        lambda digits: "9" + digits  # over MAX_DIGITS, up to past Python's 4,300
    ),
    st.integers(max_value=-1).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(st.sampled_from(FOREIGN_DIGITS), min_size=1, max_size=30),
    st.tuples(st.integers(0, 99), st.text(st.sampled_from(FOREIGN_DIGITS), min_size=1)).map(
        lambda t: f"{t[0]}{t[1]}"
    ),
    st.sampled_from(["1_0", "+", "0x10", "1e3", "\u0663.\u0665", "-" + "0" * 5000]),
)


def integer_parameters(spec: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(method, path, where, name) of every integer parameter of the OpenAPI, and of ``/v2``'s
    ``{version}`` (a string in the protocol, read as an integer)."""
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                integer = schema.get("type") == "integer" or parameter["name"] == "version"
                if integer:
                    found.append((method, path, parameter["in"], parameter["name"]))
    return found


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, tiny_models: Path) -> Iterator[TestClient]:
    import shutil

    root = tmp_path_factory.mktemp("numbers")
    shutil.copytree(tiny_models, root / "models")
    app = create_app(make_settings(root / "models"))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def call(client: TestClient, method: str, path: str, where: str, name: str, raw: str) -> Any:
    """The request with ``raw`` as parameter ``name``, every other parameter valid."""
    values = {**PATH_VALUES, name: raw} if where == "path" else PATH_VALUES
    # Path values travel percent-encoded (a '/' or '%' in a number would change the route).
    url = re.sub(r"{(\w+)}", lambda m: _quote(values[m.group(1)]), path)
    params = {name: raw} if where == "query" else None
    headers = {name: raw} if where == "header" else None
    if method != "post" or "/v2/" in path:
        return client.request(method, url, params=params, headers=headers)
    if "/image" in path:  # an image route takes image bodies only (415 for JSON)
        headers = {**(headers or {}), "Content-Type": "image/png"}
        return client.request(method, url, params=params, headers=headers, content=b"")
    return client.request(method, url, params=params, headers=headers, json={"pixels": [0] * 64})


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def named(response: Any, name: str) -> bool:
    """The answer names the parameter (``version`` for ``query.version``)."""
    return name.lower() in response.text.lower()


def test_the_openapi_has_the_integer_parameters(client: TestClient) -> None:
    """The test covers ``?version=``, ``?limit=``, ``?offset=`` and the paths' ``{version}``."""
    names = {(where, name) for _m, _p, where, name in integer_parameters(client.app.openapi())}  # type: ignore[attr-defined]
    assert {("query", "version"), ("query", "limit"), ("query", "offset")} <= names
    assert ("path", "version") in names


@given(raw=bad_numbers)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_a_bad_number_is_a_4xx_naming_the_parameter(client: TestClient, raw: str) -> None:
    """Every integer parameter of the OpenAPI, and the integer headers, answer a bad number
    with a 4xx whose body names the parameter."""
    cases = integer_parameters(client.app.openapi())  # type: ignore[attr-defined]
    cases += [(m, p, "header", h) for m, p, h in HEADERS]
    for method, path, where, name in cases:
        if where == "header" and not raw.isascii():
            continue  # HTTP header values are bytes: httpx sends ASCII only
        if name == "X-Request-Timeout-Ms" and re.fullmatch(r"\d{1,19}\.\d*", raw):
            continue  # a fraction of a millisecond is a timeout (when > 0)
        response = call(client, method, path, where, name, raw)
        assert 400 <= response.status_code < 500, (method, path, name, raw[:50], response.text)
        assert named(response, name), (method, path, name, raw[:50], response.text)
        assert len(response.content) < 4000  # the value is echoed cut short


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("7", 7),
        (" 7 ", 7),
        ("+7", 7),
        ("0", 0),
        (b"12", 12),
        ("9" * MAX_DIGITS, 10**MAX_DIGITS - 1),
    ],
)
def test_ascii_integers_parse(raw: str | bytes, value: int) -> None:
    """ASCII digits with an optional sign parse, up to ``MAX_DIGITS`` digits."""
    assert parse_int(raw, "n", minimum=0) == value


@pytest.mark.parametrize(
    "raw",
    [
        "9" * (MAX_DIGITS + 1),
        "\u0661\u0662\u0663",
        "\uff11\uff12",
        "1_0",
        "1.0",
        "",
        "-1",
        "0x1",
        "1e3",
    ],
)
def test_other_integers_are_refused_naming_the_parameter(raw: str) -> None:
    """Too many digits, other scripts, underscores, fractions, below the minimum: 422."""
    with pytest.raises(InvalidInput, match=r"^count: ") as refused:
        parse_int(raw, "count", minimum=0)
    assert refused.value.details == {"parameter": "count"}


@pytest.mark.parametrize("raw", ["nan", "inf", "1e3", "-5", "0", "0.0", "\u0661", "9" * 20])
def test_a_millisecond_count_is_a_plain_positive_decimal(raw: str) -> None:
    """``X-Request-Timeout-Ms`` takes ``250`` or ``2.5``, never an exponent, nan or inf."""
    assert parse_number("2.5", "t") == 2.5
    with pytest.raises(InvalidInput, match=r"^t: "):
        parse_number(raw, "t")
