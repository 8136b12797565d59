"""The encoder writes exactly the bytes it wrote before it was made faster: stored payload
digests and journal hashes compare with them. The reference below is that encoder as it was,
and `_reference_by_value` the request digest's form as it was built before it was folded into
the encoder (`dumps_by_value`)."""

from __future__ import annotations

import math
from collections import OrderedDict, UserList
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal, localcontext
from enum import IntEnum, StrEnum
from json.encoder import encode_basestring
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.clock import ATHENS
from agent.fiscal.document_builder import internal_document_id, price_lines, receipt_payload
from agent.fiscal.provider_payloads import DocumentIdentity, PaymentEntry
from agent.fiscal.receipt_model import ReceiptRequest
from agent.json_codec import JsonEncodeError, dumps, dumps_by_value, loads
from tests.fiscal.fixtures import shop_config

QA_PAYLOADS = Path(__file__).parent / "fiscal" / "qa_payloads"
OMIT = frozenset({"discount", "table"})


# -- the reference: the encoder and the digest's form as they were -----------------------------


def _reference_dumps(value: Any, *, allow_float: bool = False) -> bytes:
    parts: list[str] = []
    _ref_encode(value, parts, allow_float)
    return "".join(parts).encode("utf-8")


def _ref_encode(value: Any, out: list[str], allow_float: bool) -> None:
    kind = type(value)
    if kind is str:
        out.append(encode_basestring(value))
    elif kind is dict:
        _ref_mapping(value, out, allow_float)
    elif kind is Decimal:
        out.append(_ref_decimal(value))
    elif kind is int:
        out.append(int.__repr__(value))
    elif kind is list or kind is tuple:
        _ref_sequence(value, out, allow_float)
    else:
        _ref_other(value, out, allow_float)


def _ref_mapping(value: Mapping[Any, Any], out: list[str], allow_float: bool) -> None:
    out.append("{")
    separator = ""
    for key, item in value.items():
        out.append(separator)
        out.append(encode_basestring(key if type(key) is str else str(key)))
        out.append(":")
        _ref_encode(item, out, allow_float)
        separator = ","
    out.append("}")


def _ref_sequence(value: Sequence[Any], out: list[str], allow_float: bool) -> None:
    out.append("[")
    separator = ""
    for item in value:
        out.append(separator)
        _ref_encode(item, out, allow_float)
        separator = ","
    out.append("]")


def _ref_decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise JsonEncodeError(f"{value} has no JSON form")
    return format(value, "f")


def _ref_other(value: Any, out: list[str], allow_float: bool) -> None:
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
        out.append(_ref_decimal(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise JsonEncodeError(f"{value} has no JSON form")
        if not allow_float:
            raise JsonEncodeError("floats are not allowed in provider JSON; use Decimal")
        out.append(repr(value))
    elif isinstance(value, Mapping):
        _ref_mapping(value, out, allow_float)
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        _ref_sequence(value, out, allow_float)
    else:
        raise JsonEncodeError(f"cannot encode {type(value).__name__} as JSON")


def _reference_by_value(value: Any, omit: frozenset[str]) -> Any:
    if isinstance(value, Decimal):
        return value.normalize() if value else Decimal(0)
    if isinstance(value, dict):
        return {
            key: _reference_by_value(item, omit)
            for key, item in value.items()
            if not (item is None and key in omit)
        }
    if isinstance(value, list | tuple):
        return [_reference_by_value(item, omit) for item in value]
    return value


def _outcome(encode: Any, value: Any, **options: Any) -> bytes | tuple[type, str]:
    """The bytes, or the refusal (its type and message), so a refusal must match too."""
    try:
        return bytes(encode(value, **options))
    except (TypeError, ValueError) as refused:
        return type(refused), str(refused)


# -- inputs: everything the encoder accepts or refuses -----------------------------------------


class Code(IntEnum):
    DELAYED = 1


class Kind(StrEnum):
    RECEIPT = "receipt"


class Shouting(int):
    """An int whose `str` is not its digits: written as `str` writes it, as before."""

    def __str__(self) -> str:
        return "SHOUT"


class Label(str):
    """A str key whose `str` is not its text: written as `str` writes it, as before."""

    def __str__(self) -> str:
        return "label"


class Money(Decimal):
    def __format__(self, spec: str) -> str:
        return "7.77"


ODD_TEXT = [
    "",
    '"',
    "\\",
    "\x00",
    '"\x00',
    "\\u0000",
    "\ud800",
    "\x1f\x7f",
    "\n\t\r\b\f",
    "\ue000",
    "\u2028\u2029",
    'Καφές "διπλός"',
    ',"discount":null',
    "1E+1",
    "null",
    "true",
]
ODD_DECIMALS = [
    Decimal("1E+1"),
    Decimal("-0.00"),
    Decimal("0E-7"),
    Decimal("-0"),
    Decimal("1E-7"),
    Decimal("0.000001"),
    Decimal("1.5E-6"),
    Decimal("9E+30"),
    Decimal("123.4500"),
    Decimal("12.40"),
    Decimal("1234567890123456789012345678901234.5"),
]
texts = st.text() | st.sampled_from(ODD_TEXT)
decimals = st.decimals(allow_nan=False, allow_infinity=False) | st.sampled_from(ODD_DECIMALS)
plain_leaves = st.one_of(
    texts, decimals, st.integers(), st.booleans(), st.none(), st.sampled_from(sorted(OMIT))
)
odd_leaves = st.sampled_from(
    [
        Code.DELAYED,
        Kind.RECEIPT,
        Shouting(5),
        Label("x"),
        Money("1.10"),
        Decimal("NaN"),
        Decimal("-Infinity"),
        0.5,
        -0.0,
        1e16,
        math.nan,
        math.inf,
        object(),
        b"{}",
        {1, 2},
        datetime(2026, 3, 29, tzinfo=ATHENS),
    ]
)
keys = st.one_of(
    texts,
    st.sampled_from(sorted(OMIT)),
    st.integers(),
    st.booleans(),
    st.none(),
    decimals,
    st.sampled_from([Kind.RECEIPT, Label("k"), Code.DELAYED, 1.5]),
)


def _containers(children: Any, key_strategy: Any) -> Any:
    mappings = st.dictionaries(key_strategy, children, max_size=6)
    sequences = st.lists(children, max_size=6)
    return st.one_of(
        mappings,
        sequences,
        sequences.map(tuple),
        mappings.map(OrderedDict),
        mappings.map(MappingProxyType),
        sequences.map(UserList),
    )


anything = st.recursive(
    st.one_of(plain_leaves, plain_leaves, odd_leaves),
    lambda children: _containers(children, keys),
    max_leaves=40,
)
# What a request's `model_dump()` is made of: the digest's form is defined on exactly these.
dumped_requests = st.recursive(
    plain_leaves,
    lambda children: st.one_of(
        st.dictionaries(st.one_of(texts, st.sampled_from(sorted(OMIT))), children, max_size=6),
        st.lists(children, max_size=6),
        st.lists(children, max_size=6).map(tuple),
    ),
    max_leaves=40,
)


# -- the properties -----------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(anything, st.booleans())
def test_every_value_is_written_or_refused_exactly_as_before(value: Any, allow_float: bool) -> None:
    assert _outcome(dumps, value, allow_float=allow_float) == _outcome(
        _reference_dumps, value, allow_float=allow_float
    )


@settings(max_examples=300, deadline=None)
@given(dumped_requests)
def test_the_digest_form_is_the_by_value_copy_written_as_before(value: Any) -> None:
    assert _outcome(dumps_by_value, value, omit_null=OMIT) == _outcome(
        _reference_dumps, _reference_by_value(value, OMIT)
    )


@pytest.mark.parametrize("path", sorted(QA_PAYLOADS.glob("*.json")), ids=lambda p: p.name)
def test_the_provider_sample_payloads_are_written_as_before(path: Path) -> None:
    payload = loads(path.read_bytes())
    assert dumps(payload) == _reference_dumps(payload)


def test_a_ten_line_receipt_payload_is_written_as_before() -> None:
    lines = [
        {
            "description": f"Είδος {n} — καφές/σνακ",
            "quantity": 1 + n % 3,
            "unit_price": str(Decimal("1.10") + Decimal(n % 7) * Decimal("0.35")),
            "vat_category": 1 if n % 2 else 2,
        }
        for n in range(10)
    ]
    request = ReceiptRequest.model_validate(
        {"request_id": "r1", "lines": lines, "payments": [{"method": 3, "amount": "36.65"}]}
    )
    identity = DocumentIdentity(
        request.type,
        "ΑΛΠ",
        7,
        datetime(2026, 3, 29, 3, 30, 5, tzinfo=ATHENS),
        internal_document_id(request.type, "ΑΛΠ", 7),
    )
    priced = price_lines(request.lines, prices_include_vat=True)
    payments = [PaymentEntry(method=p.method, amount=p.amount) for p in request.payments]
    payload = receipt_payload(shop_config(), identity, request, priced, payments)
    assert dumps(payload) == _reference_dumps(payload)
    assert dumps_by_value(request.model_dump(), omit_null=OMIT) == _reference_dumps(
        _reference_by_value(request.model_dump(), OMIT)
    )


def test_floats_are_refused_unless_allowed_and_never_when_not_finite() -> None:
    nested = {"a": [Decimal("1.10"), {"b": (0.5,)}]}
    with pytest.raises(JsonEncodeError, match="floats are not allowed"):
        dumps(nested)
    assert dumps(nested, allow_float=True) == b'{"a":[1.10,{"b":[0.5]}]}'
    for value in (math.nan, math.inf, Decimal("NaN"), Decimal("sNaN")):
        with pytest.raises(JsonEncodeError, match="has no JSON form"):
            dumps({"x": [value]}, allow_float=True)
    with pytest.raises(JsonEncodeError, match="floats are not allowed"):
        dumps_by_value({"x": 0.5}, omit_null=OMIT)


def test_a_key_is_written_as_str_writes_it() -> None:
    value = {True: 1, None: 2, 3: 3, Decimal("1E+1"): 4, Label("k"): 5, Kind.RECEIPT: 6}
    assert dumps(value) == b'{"True":1,"None":2,"3":3,"1E+1":4,"label":5,"receipt":6}'
    # An exact "k" seen first does not lend its written form to a key that only equals it.
    assert dumps([{"k": 1}, {Label("k"): 2}]) == b'[{"k":1},{"label":2}]'


def test_the_digest_form_drops_only_the_named_keys_while_null() -> None:
    value = {"discount": None, "table": "T4", "code": None, "lines": [{"discount": None}]}
    assert dumps_by_value(value, omit_null=OMIT) == b'{"table":"T4","code":null,"lines":[{}]}'
    amounts = [Decimal("2.50"), Decimal("10.00"), Decimal("-0.00"), Decimal("0E-7")]
    assert dumps_by_value(amounts, omit_null=OMIT) == b"[2.5,10,0,0]"


def test_text_that_cannot_be_utf8_is_refused_as_before() -> None:
    with pytest.raises(UnicodeEncodeError):
        dumps({"s": "\ud800"})


@pytest.mark.parametrize("capitals", [1, 0])
def test_a_decimal_of_any_exponent_is_written_in_fixed_point(capitals: int) -> None:
    """`str` of a Decimal is taken only where it is the fixed-point form; whether the context
    writes `E` or `e` changes nothing."""
    with localcontext() as context:
        context.capitals = capitals
        for exponent in range(-40, 41):
            for digits in ((0,), (1,), (7, 0), (1, 2, 3, 4, 5), (9,) * 30):
                for sign in (0, 1):
                    value = Decimal((sign, digits, exponent))
                    assert dumps(value) == format(value, "f").encode(), value
