"""JSON where money stays `Decimal`: parsed without float, written as exact JSON numbers.

The provider payload is frozen as bytes before the first network call, so the encoding must be
deterministic (key order as given, no whitespace variation) and exact for amounts.

The encoder runs on the till's path (every payload, answer and request digest), so its loops
handle the exact types a payload is made of inline; any other type takes the general rules
(`_encode_other`), which decide exactly as before.

The stdlib's C encoder is not used: it writes floats, bool and None keys and int/str subclasses
without asking, so proving a value safe for it takes a walk over every element, which with the
Decimals spliced in afterwards costs what the C encoder saves (docs/performance.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from json.encoder import encode_basestring  # the C escaper, UTF-8 kept as is
from typing import Any

_ZERO = Decimal(0)


class JsonEncodeError(TypeError):
    """A value that has no exact JSON form (float, NaN, an unknown type)."""


@dataclass(frozen=True, slots=True)
class _Rules:
    """How one call writes: floats refused unless allowed; for a digest (`by_value`) amounts
    in their shortest form and the keys in `omit_null` left out while null."""

    allow_float: bool = False
    by_value: bool = False
    omit_null: frozenset[Any] = frozenset()


_EXACT = _Rules()
_WITH_FLOATS = _Rules(allow_float=True)


def dumps(value: Any, *, allow_float: bool = False) -> bytes:
    """Serialize with Decimal as a plain JSON number (`12.40`, never `1.24E+1`), UTF-8, compact.

    Floats are refused unless `allow_float` (status figures such as a clock offset); money is
    never a float, so provider payloads are always written without it."""
    return _write(value, _WITH_FLOATS if allow_float else _EXACT)


def dumps_by_value(value: Any, *, omit_null: frozenset[str]) -> bytes:
    """`dumps` of the value as compared by value, for a digest: every Decimal in its shortest
    form (`2.50` → `2.5`, `10.00` → `10`, any zero `0`), and a key in `omit_null` left out
    while its value is null (a field added later, so a digest taken before it existed still
    matches). Floats are refused."""
    return _write(value, _Rules(by_value=True, omit_null=omit_null))


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
        data = data.decode(_encoding(data), "surrogatepass")
    elif data.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", data, 0)
    return _DECODER.decode(data)


def _encoding(data: bytes | bytearray) -> str:
    """`json.detect_encoding`, answered at once for what nearly every body is: UTF-8 without a
    BOM (a first byte that starts no BOM, a second that is not 0)."""
    if data and data[0] not in (0x00, 0xEF, 0xFE, 0xFF) and (len(data) < 2 or data[1]):
        return "utf-8"
    return json.detect_encoding(data)


def _write(value: Any, rules: _Rules) -> bytes:
    parts: list[str] = []
    _encode(value, parts, rules)
    return "".join(parts).encode("utf-8")


def _encode(value: Any, out: list[str], rules: _Rules) -> None:
    kind = type(value)
    if kind is dict:
        _encode_mapping(value.items(), out, rules)
    elif kind is list or kind is tuple:
        _encode_sequence(value, out, rules)
    elif kind is str:
        out.append(encode_basestring(value))
    elif kind is Decimal:
        out.append(_decimal(value, rules.by_value))
    elif kind is int:
        out.append(repr(value))
    else:
        _encode_other(value, out, rules)


def _encode_mapping(items: Iterable[tuple[Any, Any]], out: list[str], rules: _Rules) -> None:
    """Each entry is written with a leading comma (`,"key":value`); the first entry's comma
    becomes the opening brace."""
    append = out.append
    omit = rules.omit_null
    by_value = rules.by_value
    first = len(out)
    for key, item in items:
        name = _key(key) if type(key) is str else "," + encode_basestring(str(key)) + ":"
        kind = type(item)
        if kind is str:
            append(name + encode_basestring(item))
        elif kind is Decimal:
            append(name + _decimal(item, by_value))
        elif kind is int:
            append(name + repr(item))
        elif item is None:
            if not omit or key not in omit:
                append(name + "null")
        elif item is True:
            append(name + "true")
        elif item is False:
            append(name + "false")
        else:
            append(name)
            _encode(item, out, rules)
    if len(out) == first:
        append("{}")
    else:
        out[first] = "{" + out[first][1:]
        append("}")


def _encode_sequence(items: Iterable[Any], out: list[str], rules: _Rules) -> None:
    append = out.append
    first = len(out)
    for item in items:
        kind = type(item)
        if kind is str:
            append("," + encode_basestring(item))
        elif kind is Decimal:
            append("," + _decimal(item, rules.by_value))
        elif kind is int:
            append("," + repr(item))
        else:
            append(",")
            _encode(item, out, rules)
    if len(out) == first:
        append("[]")
    else:
        out[first] = "[" + out[first][1:]
        append("]")


@lru_cache(maxsize=4096)
def _key(key: str) -> str:
    """A key as `,"key":`. A pure function of a small vocabulary (field names), so it is
    memoised; the bound only matters to a caller whose keys are data."""
    return "," + encode_basestring(key) + ":"


def _decimal(value: Decimal, by_value: bool) -> str:
    """An exact `Decimal`: `str` is its fixed-point form unless it writes an exponent (or is
    not finite), and costs a quarter of `format(value, "f")`."""
    if by_value:
        value = value.normalize() if value else _ZERO  # a plain Decimal, even of a subclass
    text = str(value)
    if "E" in text or "e" in text or not value.is_finite():
        return _fixed_point(value)
    return text


def _fixed_point(value: Decimal) -> str:
    if not value.is_finite():
        raise JsonEncodeError(f"{value} has no JSON form")
    return format(value, "f")


def _encode_other(value: Any, out: list[str], rules: _Rules) -> None:
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
        out.append(_decimal(value, True) if rules.by_value else _fixed_point(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise JsonEncodeError(f"{value} has no JSON form")
        if not rules.allow_float:
            raise JsonEncodeError("floats are not allowed in provider JSON; use Decimal")
        out.append(repr(value))
    elif isinstance(value, Mapping):
        _encode_mapping(value.items(), out, rules)
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        _encode_sequence(value, out, rules)
    else:
        raise JsonEncodeError(f"cannot encode {type(value).__name__} as JSON")
