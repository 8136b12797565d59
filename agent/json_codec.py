"""JSON where money stays `Decimal`: parsed without float, written as exact JSON numbers.

The provider payload is frozen as bytes before the first network call, so the encoding must be
deterministic (key order as given, no whitespace variation) and exact for amounts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from json.encoder import encode_basestring  # the C escaper, UTF-8 kept as is
from typing import Any


class JsonEncodeError(TypeError):
    """A value that has no exact JSON form (float, NaN, an unknown type)."""


def dumps(value: Any, *, allow_float: bool = False) -> bytes:
    """Serialize with Decimal as a plain JSON number (`12.40`, never `1.24E+1`), UTF-8, compact.

    Floats are refused unless `allow_float` (status figures such as a clock offset); money is
    never a float, so provider payloads are always written without it."""
    parts: list[str] = []
    _encode(value, parts, allow_float)
    return "".join(parts).encode("utf-8")


def loads(data: bytes | str) -> Any:
    """Parse with every non-integer number as Decimal; NaN/Infinity are refused."""
    return json.loads(data, parse_float=Decimal, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


def _encode(value: Any, out: list[str], allow_float: bool) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(encode_basestring(value))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise JsonEncodeError(f"{value} has no JSON form")
        out.append(format(value, "f"))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise JsonEncodeError(f"{value} has no JSON form")
        if allow_float:
            out.append(repr(value))
            return
        raise JsonEncodeError("floats are not allowed in provider JSON; use Decimal")
    elif isinstance(value, Mapping):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                out.append(",")
            out.append(encode_basestring(str(key)))
            out.append(":")
            _encode(item, out, allow_float)
        out.append("}")
    elif isinstance(value, Sequence):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out, allow_float)
        out.append("]")
    else:
        raise JsonEncodeError(f"cannot encode {type(value).__name__} as JSON")
