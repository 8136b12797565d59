"""Defensive reading of provider answers: case-insensitive keys, error text order, fallbacks."""

from __future__ import annotations

from agent.elise.outcomes import (
    AadeDown,
    Accepted,
    Duplicate,
    PaymentUpdated,
    Rejected,
    SignatureValidation,
    Signed,
    Unauthorized,
    Unreachable,
)
from agent.elise.responses import (
    RAW_LIMIT,
    send_outcome,
    sign_outcome,
    update_outcome,
    validate_outcome,
)

PORTAL = "https://portal.example/"


def test_accepted_with_upper_case_keys_and_qr_from_signature() -> None:
    body = (
        b'{"MARK": "400000000000123", "UID": "AB", "AuthenticationCode": "C0", "Signature": "s1"}'
    )
    outcome = send_outcome(201, body, PORTAL)
    assert outcome == Accepted(400000000000123, "AB", "C0", "https://portal.example/v/s1", {})
    assert isinstance(outcome, Accepted) and outcome.raw["mark"] == "400000000000123"


def test_accepted_prefers_the_url_and_reads_unique_id() -> None:
    body = b'{"mark": 5, "uniqueId": "U", "qrUrl": "https://q/1", "signature": "s"}'
    outcome = send_outcome(200, body, PORTAL)
    assert isinstance(outcome, Accepted) and (outcome.uid, outcome.qr_url) == ("U", "https://q/1")


def test_success_body_without_mark_or_not_json_is_unreachable() -> None:
    assert isinstance(send_outcome(201, b'{"success": true}', PORTAL), Unreachable)
    assert isinstance(send_outcome(201, b"<html>proxy</html>", PORTAL), Unreachable)


def test_duplicate_as_409_or_as_unsuccessful_200() -> None:
    assert send_outcome(409, b'{"message": "dup", "Mark": 7}', PORTAL) == Duplicate(7, "dup", {})
    body = b'{"success": false, "message": "Document has already been transmitted", "mark": 9}'
    outcome = send_outcome(200, body, PORTAL)
    assert isinstance(outcome, Duplicate) and outcome.mark == 9
    assert send_outcome(409, b"", PORTAL) == Duplicate(None, "(empty body)", {})


def test_error_text_order_message_then_mydata_errors_then_error_message() -> None:
    body = (
        b'{"message": "m", "myDataErrors": [{"Key": "k1", "Value": "v1"}, {"key": "k2"}],'
        b' "errorMessage": "e"}'
    )
    assert send_outcome(400, body, PORTAL) == Rejected(400, ["m", "k1: v1", "k2", "e"])
    assert send_outcome(422, b"plain text", PORTAL) == Rejected(422, ["plain text"])
    long = send_outcome(400, b"x" * 2000, PORTAL)
    assert isinstance(long, Rejected) and len(long.messages[0]) == RAW_LIMIT + 1


def test_status_classes() -> None:
    assert send_outcome(401, b'{"message": "no"}', PORTAL) == Unauthorized("no")
    assert send_outcome(408, b'{"message": "iapr"}', PORTAL) == AadeDown("iapr")
    assert isinstance(send_outcome(503, b"", PORTAL), Unreachable)
    assert isinstance(send_outcome(429, b"", PORTAL), Unreachable)
    assert isinstance(send_outcome(404, b"", PORTAL), Rejected)


def test_signpos_answer_shapes() -> None:
    assert sign_outcome(200, b'{"Input": "i", "Signature": "s"}') == Signed("i", "s", {})
    assert sign_outcome(200, b'{"data": {"input": "i", "signature": "s"}}') == Signed("i", "s", {})
    assert isinstance(sign_outcome(200, b'{"input": "i"}'), Unreachable)


def test_update_payment_and_validate_shapes() -> None:
    assert update_outcome(200, b'{"success": true, "message": "4001"}') == PaymentUpdated(
        "4001", {}
    )
    assert isinstance(update_outcome(200, b'{"success": false, "message": "no"}'), Rejected)
    assert validate_outcome(200, b"true") == SignatureValidation(True, {})
    assert validate_outcome(200, b'{"IsValid": false}') == SignatureValidation(False, {})
    assert isinstance(validate_outcome(200, b"{}"), Unreachable)
    assert isinstance(validate_outcome(408, b""), Unreachable)


def test_a_mark_outside_mydatas_range_is_not_a_mark() -> None:
    """A MARK is an xs:long: a 2xx with a larger one is no usable answer (the same bytes go again,
    nothing crashes), and a duplicate carrying one leaves the MARK unknown for a person."""
    for mark in (b"1000000000000000000000000000000", b'"1000000000000000000000000000000"', b"0"):
        outcome = send_outcome(201, b'{"mark": %s}' % mark, PORTAL)
        assert isinstance(outcome, Unreachable) and "usable MARK" in outcome.reason
    assert send_outcome(409, b'{"message": "dup", "mark": 1e30}', PORTAL) == Duplicate(
        None, "dup", {}
    )
    largest = send_outcome(201, b'{"mark": 9223372036854775807}', PORTAL)
    assert isinstance(largest, Accepted) and largest.mark == 2**63 - 1


def test_success_false_saying_the_provider_failed_is_retried_not_rejected() -> None:
    body = b'{"success": false, "message": "Internal server error, try later"}'
    outcome = send_outcome(200, body, PORTAL)
    assert isinstance(outcome, Unreachable) and "try later" in outcome.reason
    assert isinstance(update_outcome(200, body), Unreachable)
    for text in ("Invalid VAT category on line 2", "Correct the VAT number and try again"):
        refused = b'{"success": false, "message": "%s"}' % text.encode()
        assert send_outcome(200, refused, PORTAL) == Rejected(200, [text])
