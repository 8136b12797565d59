from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.json_codec import JsonEncodeError, dumps, loads


def test_decimal_written_exactly():
    assert dumps({"a": Decimal("12.40"), "b": Decimal("1E+1")}) == b'{"a":12.40,"b":10}'


def test_greek_is_utf8_not_escaped():
    assert dumps({"s": "ΑΛΠ"}) == '{"s":"ΑΛΠ"}'.encode()


def test_float_and_nan_refused():
    with pytest.raises(JsonEncodeError):
        dumps({"a": 1.5})
    with pytest.raises(JsonEncodeError):
        dumps(Decimal("NaN"))
    with pytest.raises(ValueError):
        loads('{"a": NaN}')


@given(
    st.decimals(
        allow_nan=False, allow_infinity=False, places=2, min_value=-(10**9), max_value=10**9
    )
)
def test_round_trip_keeps_decimal(value):
    assert loads(dumps({"v": value}))["v"] == value


def test_subclasses_take_the_general_rules():
    from collections import OrderedDict
    from enum import IntEnum, StrEnum

    class Code(IntEnum):
        DELAYED = 1

    class Kind(StrEnum):
        RECEIPT = "receipt"

    value = OrderedDict([("c", Code.DELAYED), ("k", Kind.RECEIPT), ("t", (True, None, False))])
    assert dumps(value) == b'{"c":1,"k":"receipt","t":[true,null,false]}'
    assert dumps({"f": 0.5}, allow_float=True) == b'{"f":0.5}'
    with pytest.raises(JsonEncodeError):
        dumps({"o": object()})


def test_bytes_are_refused_not_written_as_a_list_of_numbers():
    with pytest.raises(JsonEncodeError, match="bytes"):
        dumps({"payload": b"{}"})


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1.50, "b": [1, "\xce\xb1"]}',
        '{"a": 1.50}'.encode("utf-16"),
        '{"a": 1.50}'.encode("utf-32-le"),
        b'\xef\xbb\xbf{"a": 1.50}',
        '{"a": 1.50}',
        '\ufeff{"a": 1.50}',
        b'{"a": Infinity}',
        b'{"a": ',
        b"\xff\xfe\x00",
    ],
)
def test_loads_reads_what_json_loads_reads(data: bytes | str) -> None:
    """The shared decoder reads bytes and text exactly as `json.loads` with the same options,
    and refuses what it refuses (with NaN/Infinity refused on top)."""
    import json

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not a valid JSON number")

    def outcome(parse: Callable[[bytes | str], object]) -> tuple[str, object]:
        try:
            return ("value", parse(data))
        except ValueError as exc:
            return ("refused", f"{type(exc).__name__}: {exc}")

    reference = outcome(lambda d: json.loads(d, parse_float=Decimal, parse_constant=refuse))
    assert outcome(loads) == reference


def test_the_encoding_of_a_body_is_what_json_detect_encoding_says() -> None:
    """The UTF-8 shortcut over every start of up to four bytes made of BOM bytes, zeros and
    JSON's first characters, with and without more bytes after them."""
    import itertools
    import json

    from agent.json_codec import _encoding

    alphabet = [0x00, 0x01, 0x22, 0x5B, 0x7B, 0xEF, 0xBB, 0xBF, 0xFE, 0xFF, 0x80]
    for length in range(5):
        for start in itertools.product(alphabet, repeat=length):
            for rest in (b"", b"{}", b"\x00\x00"):
                data = bytes(start) + rest
                assert _encoding(data) == json.detect_encoding(data), data
