"""End to end, the breaker's delayed code follows the kind of outage.

Code 1 when the provider cannot be reached, code 2 when it answers 408 (AADE down).

The background probe and sync are parked (one-hour intervals), so the breaker only moves on the
requests the test makes: the order of events is fixed, not raced against a timer."""

from __future__ import annotations

import base64
from decimal import Decimal as D
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.core.answers import DocumentAnswer, SignatureAnswer
from agent.core.sync_report import SyncReport
from agent.json_codec import loads
from tests.e2e.stack import E2EStack, cash_receipt, e2e_stack, parsed, wait_for

pytestmark = pytest.mark.e2e

e2e_stack_process, stack = e2e_stack(probe_interval_s=3600.0, sync_interval_s=3600.0)


def _offline(stack: E2EStack, request_id: str) -> DocumentAnswer:
    answer = stack.issue(cash_receipt(request_id))
    assert answer.state == "delayed", answer
    return answer


def test_provider_lost_after_aade_outage_gives_code_1(stack: E2EStack) -> None:
    stack.set_faults("aade_down")
    aade = _offline(stack, "breaker-aade-1")
    assert aade.delayed_code == 2
    assert stack.breaker() == "open"

    stack.set_faults("down")
    # The probe fails: the provider is out of reach.
    report = parsed(stack.post("/v1/sync", {}), SyncReport, 200)
    assert report.stopped_early is True
    assert stack.breaker() == "open"
    lost = _offline(stack, "breaker-down-1")

    assert lost.delayed_code == 1
    assert lost.legend == "Απώλεια Διασύνδεσης Οντότητας - Παρόχου"

    stack.set_faults("ok")

    def delivered() -> list[DocumentAnswer] | None:
        stack.post("/v1/sync", {})
        answers = [stack.receipt(a.receipt_id) for a in (aade, lost)]
        return answers if all(a.state == "accepted" for a in answers) else None

    accepted = wait_for(delivered, timeout_s=20, what="both receipts accepted")
    for answer, code in zip(accepted, (2, 1), strict=True):
        provider = stack.provider_document(answer.uid)
        assert provider is not None
        assert provider["is_delayed_code"] == code
        assert provider["submissions"] == 1


def test_first_receipt_after_recovery_goes_online(stack: E2EStack) -> None:
    stack.set_faults("down")
    _offline(stack, "breaker-recover-1")
    stack.set_faults("ok")
    stack.close_breaker()

    answer = stack.issue(cash_receipt("breaker-recover-2"))

    assert answer.state == "accepted"


TERMINAL = "TID00077"
LINES = [
    {"description": "Τυρόπιτα", "quantity": D("2"), "unit_price": D("4.20"), "vat_category": 2}
]


def _sign_request(request_id: str) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "terminal_id": TERMINAL,
        "document_type": "11.1",
        "lines": LINES,
        "amount": D("8.40"),
    }


def test_card_signing_goes_on_while_only_aade_is_down(stack: E2EStack) -> None:
    """signpos does not involve AADE: after a 408 opened the breaker the terminal still gets a
    provider signature, and the receipt it pays goes out offline with IsDelayedCode 2."""
    stack.set_faults("aade_down")
    assert _offline(stack, "breaker-aade-card-0").delayed_code == 2
    assert stack.breaker() == "open"

    response = stack.post("/v1/payments/sign", _sign_request("breaker-aade-sign"))

    signed = parsed(response, SignatureAnswer)
    key = serialization.load_pem_public_key(stack.public_key_pem())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(
        base64.b64decode(signed.signature),
        signed.input.encode("ascii"),
        ec.ECDSA(hashes.SHA256()),
    )
    assert stack.breaker() == "open"  # a signature says nothing about AADE
    card = {
        "method": 7,
        "amount": D("8.40"),
        "terminal_id": TERMINAL,
        "transaction_id": "TX-AADE-1",
        "signature_id": signed.signature_id,
    }
    issued = stack.post(
        "/v1/receipts", {"request_id": "breaker-aade-card", "lines": LINES, "payments": [card]}
    )
    receipt = parsed(issued, DocumentAnswer)
    assert (receipt.state, receipt.delayed_code) == ("delayed", 2)
    assert receipt.number == signed.number and receipt.uid == signed.uid
    payload = loads(stack.stored(receipt.receipt_id).payload)
    assert payload["PaymentDetails"]["PaymentMethods"][0]["providersSignature"] == signed.signature

    stack.set_faults("ok")
    stack.sync_until_accepted([receipt.receipt_id])
    provider = stack.provider_document(receipt.uid)
    assert provider is not None and provider["is_delayed_code"] == 2


def test_card_signing_is_autonomous_at_once_while_the_provider_is_unreachable(
    stack: E2EStack,
) -> None:
    """Open for the provider itself (code 1): 503 autonomous without a call. The sandbox is
    healthy again by then (the parked probe has not noticed), so only a call could sign."""
    stack.set_faults("down")
    assert _offline(stack, "breaker-down-card-0").delayed_code == 1
    stack.set_faults("ok")

    response = stack.post("/v1/payments/sign", _sign_request("breaker-down-sign"))

    assert response.status_code == 503, response.text
    assert response.json()["mode"] == "autonomous"
    assert response.json()["reason"] == "InterconnectionLoss"
    assert stack.breaker() == "open"
