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


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


# One decoder for every call, as `json.loads` keeps its `_default_decoder`: given any option,
# `json.loads` builds a decoder and its scanner per call, which was most of parsing the
# provider's small answers.
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_refuse_constant)


def loads(data: bytes | str) -> Any:
    """Parse with every non-integer number as Decimal; NaN/Infinity are refused. Bytes in
    UTF-8, -16 or -32 and a str with a BOM are read as `json.loads` reads them."""
    if isinstance(data, bytes | bytearray):
        data = data.decode(json.detect_encoding(data), "surrogatepass")
    elif data.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", data, 0)
    return _DECODER.decode(data)


def _encode(value: Any, out: list[str], allow_float: bool) -> None:
    # Exact types first (a provider payload is ~260 nodes of these), then the general rules.
    kind = type(value)
    if kind is str:
        out.append(encode_basestring(value))
    elif kind is dict:
        _encode_mapping(value, out, allow_float)
    elif kind is Decimal:
        out.append(_decimal(value))
    elif kind is int:
        out.append(int.__repr__(value))
    elif kind is list or kind is tuple:
        _encode_sequence(value, out, allow_float)
    else:
        _encode_other(value, out, allow_float)


def _encode_mapping(value: Mapping[Any, Any], out: list[str], allow_float: bool) -> None:
    out.append("{")
    separator = ""
    for key, item in value.items():
        out.append(separator)
        out.append(encode_basestring(key if type(key) is str else str(key)))
        out.append(":")
        _encode(item, out, allow_float)
        separator = ","
    out.append("}")


def _encode_sequence(value: Sequence[Any], out: list[str], allow_float: bool) -> None:
    out.append("[")
    separator = ""
    for item in value:
        out.append(separator)
        _encode(item, out, allow_float)
        separator = ","
    out.append("]")


def _decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise JsonEncodeError(f"{value} has no JSON form")
    return format(value, "f")


def _encode_other(value: Any, out: list[str], allow_float: bool) -> None:
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
        out.append(_decimal(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise JsonEncodeError(f"{value} has no JSON form")
        if not allow_float:
            raise JsonEncodeError("floats are not allowed in provider JSON; use Decimal")
        out.append(repr(value))
    elif isinstance(value, Mapping):
        _encode_mapping(value, out, allow_float)
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        _encode_sequence(value, out, allow_float)
    else:
        raise JsonEncodeError(f"cannot encode {type(value).__name__} as JSON")
