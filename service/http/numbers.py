"""Numbers a client writes in a path, query or header, parsed with a length bound first.

Python's ``int()`` takes any Unicode digit (Arabic-Indic, fullwidth), underscores (``'1_0'``) and
spaces, and raises an unhandled ``ValueError`` past 4,300 digits; ``float()`` takes
``'nan'``, ``'inf'`` and exponents. Every integer the service reads from a path, query or
header goes through ``parse_int`` (at most ``MAX_DIGITS`` ASCII digits, an optional sign,
nothing else, then the bounds) and every millisecond count through ``parse_number``: a bad
value is a 422 ``InvalidInput`` naming the parameter and what it takes, never a 500. Query
and path parameters that FastAPI parses are declared ``PlainInt``: the same rule, run before
pydantic (whose lax mode takes ``'1.0'`` for 1). A value echoed back in a message is cut to
``ECHO_CHARS`` characters (``shown``).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

from service.errors import InvalidInput

#: Every integer the service takes fits in an int64 (19 digits); the bounds do the rest.
MAX_DIGITS = 19
INT64_MAX = 2**63 - 1
#: A decimal number: ASCII digits, at most one point, no exponent, no sign.
_DECIMAL = re.compile(rb"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_INTEGER = re.compile(rb"[+-]?[0-9]+")
ECHO_CHARS = 40


def shown(raw: str | bytes) -> str:
    """``raw`` as a message quotes it: ``repr``, cut to ``ECHO_CHARS`` with its length."""
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    if len(text) <= ECHO_CHARS:
        return repr(text)
    return f"{text[:ECHO_CHARS]!r}... ({len(text)} characters)"


def _ascii(raw: str | bytes) -> bytes | None:
    if isinstance(raw, bytes):
        return raw.strip()
    return raw.strip().encode("ascii") if raw.isascii() else None


def parse_int(
    raw: str | bytes,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """``raw`` as an integer within ``[minimum, maximum]``, or ``InvalidInput`` naming
    ``name``: ASCII digits only (an optional sign), at most ``MAX_DIGITS`` of them."""
    value = _integer(raw)
    if value is None:
        raise _refusal(raw, name, "an integer", minimum, maximum)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise _refusal(raw, name, "out of range", minimum, maximum)
    return value


def _integer(raw: str | bytes) -> int | None:
    """``raw`` as an integer if it is one by ``parse_int``'s rule, else None."""
    text = _ascii(raw)
    if text is None or not _INTEGER.fullmatch(text) or len(text.lstrip(b"+-")) > MAX_DIGITS:
        return None
    return int(text)


def _plain_int(value: object) -> object:
    """pydantic's ``before`` step of ``PlainInt``: a string must be an integer by
    ``parse_int``'s rule (pydantic then checks the bounds and says which parameter)."""
    if not isinstance(value, str):
        return value
    number = _integer(value)
    if number is None or abs(number) > INT64_MAX:
        raise ValueError(
            f"{shown(value)} is not an integer in at most {MAX_DIGITS} ASCII digits, "
            f"from -{INT64_MAX} to {INT64_MAX}"
        )
    return number


#: ``parse_int``'s rule for a parameter FastAPI parses. With bounds, after the ``Query``:
#: ``Annotated[int, Query(ge=1), PLAIN]`` (inside a nested ``Annotated`` FastAPI writes the
#: bounds into the OpenAPI as ``ge``/``le``, which no schema reader knows).
PLAIN = BeforeValidator(_plain_int)
#: An integer path parameter (no bounds) that FastAPI parses.
PlainInt = Annotated[int, PLAIN]


def parse_number(raw: str | bytes, name: str) -> float:
    """``raw`` as a decimal number > 0 (``250``, ``2.5``), or ``InvalidInput`` naming
    ``name``: no sign, exponent, ``nan`` or ``inf``, at most ``MAX_DIGITS`` digits before
    the point."""
    text = _ascii(raw)
    if (
        text is None
        or not _DECIMAL.fullmatch(text)
        or len(text.partition(b".")[0]) > MAX_DIGITS
        or float(text) <= 0
    ):
        raise InvalidInput(
            f"{name}: {shown(raw)} is not a positive number",
            expected=f"{name}: a number > 0 in ASCII digits, e.g. 250",
            parameter=name,
        )
    return float(text)


def _refusal(
    raw: str | bytes, name: str, problem: str, minimum: int | None, maximum: int | None
) -> InvalidInput:
    """The 422 of a bad integer: the parameter, the value (cut short) and the range."""
    low = "" if minimum is None else f" >= {minimum}"
    high = "" if maximum is None else f" <= {maximum}"
    range_ = f"{low}{' and' if low and high else ''}{high}"
    what = "is not an integer" if problem == "an integer" else "is out of range"
    return InvalidInput(
        f"{name}: {shown(raw)} {what}",
        expected=f"{name}: an integer{range_} in at most {MAX_DIGITS} ASCII digits",
        parameter=name,
    )
