"""The journal detail codec gives back the exact text it packed, and refuses damage."""

import pytest

from offline_store.errors import PackedDataDamaged
from offline_store.journal import canonical_json
from offline_store.journal_detail import pack_detail, unpack_detail

SHA = "6d9ff96eca00dffa2a11ea2effd3eaaca34fe96a533ee97b1a26b179fcbdaef8"


@pytest.mark.parametrize(
    "detail",
    [
        {"job_id": 12},
        {"from": "pending"},
        {"from": "reserved", "payload_sha256": SHA},
        {"a": SHA, "b": [SHA, SHA.upper(), SHA[:63]], "c": 'Απόδειξη \u0000 "' + SHA + '"'},
        {"from": "reserved", "previous_request_id": "sign:sign-000000001", "to": "reserved"},
        {"reason": "χαρτί", "nested": {"x": None, "y": True, "z": "1.10"}},
    ],
)
def test_a_packed_detail_unpacks_to_the_same_text(detail):
    text = canonical_json(detail)
    packed = pack_detail(text)
    if packed is not None:
        assert len(packed) < len(text.encode())
        assert unpack_detail(packed) == text


def test_the_details_of_a_sale_pack_smaller():
    for detail, at_most in (
        ({"from": "reserved", "payload_sha256": SHA}, 40),
        ({"from": "pending"}, 6),
        ({"job_id": 12345}, 12),
    ):
        packed = pack_detail(canonical_json(detail))
        assert packed is not None and len(packed) <= at_most, detail


@pytest.mark.parametrize(
    ("detail", "stored"),
    [
        ({"payload_sha256": SHA}, "01c32e0a00" + SHA),
        ({"from": "pending"}, "01c3340f00"),
        ({"job_id": 12345}, "0143986c68646c625a0b00"),
        ({"from": "reserved", "payload_sha256": SHA}, "01235637" + "00" + SHA),
    ],
)
def test_the_packed_bytes_are_the_same_on_every_call(detail, stored):
    """Packed entries are hashed through their text, but the rows must not change: the bytes
    as format 1 wrote them before its deflate was remembered, on a first and a second call."""
    text = canonical_json(detail)
    assert [pack_detail(text), pack_detail(text)] == [bytes.fromhex(stored)] * 2


@pytest.mark.parametrize("damage", [b"", b"\x02abc", b"\x01\xff\xff\xff", b"\x01" + b"\x00" * 5])
def test_damaged_packing_is_refused(damage):
    with pytest.raises(PackedDataDamaged):
        unpack_detail(damage)


def test_digests_missing_after_the_stream_are_refused():
    packed = pack_detail(canonical_json({"payload_sha256": SHA}))
    assert packed is not None
    with pytest.raises(PackedDataDamaged):
        unpack_detail(packed[:-1])
