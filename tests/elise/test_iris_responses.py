"""IRIS answers from the provider: a usable InitiatePayment carries every id, the QR and the
signature; GetPaymentStatus one of the four states; anything else is no answer."""

from __future__ import annotations

from agent.elise.outcomes import IrisInitiated, IrisStatus, Rejected, Unreachable
from agent.elise.responses import iris_initiated_outcome, iris_status_outcome
from agent.json_codec import dumps

INITIATED = {
    "QrCode": "IRIS:M:AR1:E2E1:9.00",
    "EndToEndDiasId": "E2E1",
    "AuthorisationRequestId": "AR1",
    "MerchantId": "M",
    "SignedDataInput": "UID;;20261207100000;776;124;900;900;M",
    "Signature": "c2ln",
    "ValidUntil": "2026-12-07T10:02:00+02:00",
}


def test_initiated_payment_with_every_field() -> None:
    outcome = iris_initiated_outcome(200, dumps(INITIATED))
    assert isinstance(outcome, IrisInitiated)
    assert (outcome.end_to_end_id, outcome.authorisation_request_id) == ("E2E1", "AR1")
    assert outcome.valid_until is not None and outcome.valid_until.minute == 2


def test_an_initiation_without_its_signature_is_no_answer() -> None:
    body = {key: value for key, value in INITIATED.items() if key != "Signature"}
    outcome = iris_initiated_outcome(200, dumps(body))
    assert isinstance(outcome, Unreachable) and "signature" in outcome.reason


def test_status_values_and_refusals() -> None:
    for text, state in (("COMPLETED", "Completed"), ("pending", "Pending"), ("Expired", "Expired")):
        outcome = iris_status_outcome(200, dumps({"status": text}))
        assert isinstance(outcome, IrisStatus) and outcome.state == state
    assert isinstance(iris_status_outcome(200, dumps({"status": "Paid?"})), Unreachable)
    assert isinstance(iris_status_outcome(400, dumps({"message": "unknown id"})), Rejected)
    assert isinstance(iris_status_outcome(503, b""), Unreachable)
