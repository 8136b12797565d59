"""End to end, IRIS through the provider: a payment completed after three polls and the receipt
issued with it on the reserved number; one that expires (reservation released, no receipt);
one while the provider is down (503, nothing reserved)."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal as D
from typing import Any

import pytest

import offline_store as store
from agent.core.answers import DocumentAnswer
from agent.core.card_payments import parse_signed_input
from agent.core.iris_payments import IrisPaymentAnswer
from agent.json_codec import loads
from tests.e2e.stack import E2EStack, cash_receipt, e2e_stack, parsed, wait_for
from tests.e2e.test_cards import verify_signature

pytestmark = pytest.mark.e2e

e2e_stack_process, stack = e2e_stack()

LINES = [
    {"description": "Τοστ", "quantity": "2", "unit_price": "3.20", "vat_category": 2},
    {"description": "Χυμός", "quantity": "1", "unit_price": "2.60", "vat_category": 1},
]
TOTAL = D("9.00")


def _iris_outcome(stack: E2EStack, **settings: Any) -> None:
    with stack.stack.provider() as client:
        response = client.post("/_sandbox/iris", json=settings)
        assert response.status_code == 200, response.text


def _start(stack: E2EStack, request_id: str, **extra: Any) -> IrisPaymentAnswer:
    body = {"request_id": request_id, "amount": TOTAL, "lines": LINES, **extra}
    return parsed(stack.post("/v1/payments/iris", body), IrisPaymentAnswer)


def _qr_printed(stack: E2EStack, payment_id: int) -> bool:
    with stack.database() as conn:
        payment = store.get_iris_payment(conn, payment_id)
    return payment is not None and payment.print_state == "printed"


def _poll(stack: E2EStack, payment_id: int) -> str:
    return parsed(stack.get(f"/v1/payments/iris/{payment_id}"), IrisPaymentAnswer, 200).status


def _iris_receipt(request_id: str, payment_id: int) -> dict[str, Any]:
    payment = {"method": 8, "amount": TOTAL, "iris_payment_id": payment_id}
    return {"request_id": request_id, "lines": LINES, "payments": [payment]}


def test_iris_completed_after_three_polls_pays_the_reserved_receipt(stack: E2EStack) -> None:
    _iris_outcome(stack, outcome="complete", after_polls=3)
    started = _start(stack, "iris-ok", print_qr=True)
    assert started.status == "pending" and started.qr_print == "queued"
    wait_for(
        lambda: _qr_printed(stack, started.iris_payment_id),
        timeout_s=20,
        what="the IRIS QR printed",
    )
    assert base64.b64decode(started.qr_png_base64).startswith(b"\x89PNG")
    fields = parse_signed_input(started.signed_input)
    assert fields.uid == started.uid  # the provider signed our receipt's identity
    assert sorted(fields.amounts_cents) == [124, 776, 900, 900]
    assert fields.terminal_id == started.merchant_id
    verify_signature(stack, started.signature, started.signed_input)

    states = [_poll(stack, started.iris_payment_id) for _ in range(3)]
    assert states == ["pending", "pending", "completed"]

    issued = stack.post("/v1/receipts", _iris_receipt("iris-ok-receipt", started.iris_payment_id))
    receipt = parsed(issued, DocumentAnswer)
    assert receipt.state == "accepted"
    assert (receipt.receipt_id, receipt.number, receipt.uid) == (
        started.receipt_id,
        started.number,
        started.uid,
    )
    (payment,) = loads(stack.stored(receipt.receipt_id).payload)["PaymentDetails"]["PaymentMethods"]
    assert payment["PaymentMethodTypeCode"] == 8
    assert payment["transactionId"] == started.authorisation_request_id
    assert payment["terminalId"] == started.merchant_id
    assert payment["providersSignature"] == started.signature
    assert payment["posInput"] == started.signed_input
    assert started.end_to_end_id in payment["remarks"]
    assert _poll(stack, started.iris_payment_id) == "used"
    again = stack.post("/v1/receipts", _iris_receipt("iris-ok-again", started.iris_payment_id))
    assert (
        again.status_code == 409 and again.json()["error"]["code"] == "iris_payment_not_completed"
    )


def test_expired_iris_releases_the_number_and_issues_nothing(stack: E2EStack) -> None:
    _iris_outcome(stack, outcome="expire", after_polls=1)
    started = _start(stack, "iris-expired")

    assert _poll(stack, started.iris_payment_id) == "expired"

    refused = stack.post(
        "/v1/receipts", _iris_receipt("iris-expired-receipt", started.iris_payment_id)
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "iris_payment_not_completed"
    assert stack.stored(started.receipt_id).state.value == "reserved"
    cash = stack.post("/v1/receipts", cash_receipt("iris-expired-cash"))
    assert cash.status_code == 201, cash.text
    reused = parsed(cash, DocumentAnswer)
    assert reused.receipt_id == started.receipt_id  # the released number is reused
    assert reused.number == started.number


def test_provider_down_is_503_and_keeps_no_reservation(stack: E2EStack) -> None:
    _iris_outcome(stack, outcome="complete", after_polls=1)
    stack.set_faults("down")
    before = stack.document_count()

    first = stack.post(
        "/v1/payments/iris", {"request_id": "iris-down", "amount": TOTAL, "lines": LINES}
    )
    # With the breaker open now, the next one is refused before any number is reserved.
    second = stack.post(
        "/v1/payments/iris", {"request_id": "iris-down-2", "amount": TOTAL, "lines": LINES}
    )

    for response in (first, second):
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "iris_unavailable"
    assert stack.document_count() <= before + 1
    stack.set_faults("ok")
    stack.close_breaker()
    numbers = stack.last_numbers()
    cash = stack.issue(cash_receipt("iris-down-cash"))
    # The first attempt's reservation, if any, was released: the cash sale takes its number.
    assert cash.number == numbers[cash.series]
    assert stack.document_count() == before + 1


def test_a_retry_while_the_first_call_waits_on_the_provider_is_409_not_a_second_number(
    stack: E2EStack,
) -> None:
    _iris_outcome(stack, outcome="complete", after_polls=1)
    body = {"request_id": "iris-twice", "amount": TOTAL, "lines": LINES}
    before = stack.document_count()
    stack.set_faults("slow", delay_ms=3000)
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(stack.post, "/v1/payments/iris", body)
            wait_for(
                lambda: stack.document_count() > before or None,
                timeout_s=10,
                what="the first call's reservation",
            )
            again = stack.post("/v1/payments/iris", body)
            answered = first.result(timeout=30)
    finally:
        stack.set_faults("ok")
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "sign_request_settled"
    assert answered.status_code == 201, answered.text
    assert stack.document_count() == before + 1
    replay = stack.post("/v1/payments/iris", body)  # once answered, a retry is its replay
    assert replay.status_code == 201 and replay.json() == answered.json()
