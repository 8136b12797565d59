"""End to end, an abandoned card reservation never becomes a silent gap: once it expires, the
next receipt of that series takes its number, issue time and UID."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal as D

import pytest

import offline_store as store
from agent.clock import ATHENS
from agent.core.answers import SignatureAnswer
from tests.e2e.stack import E2EStack, cash_receipt, e2e_stack, parsed, wait_for

pytestmark = pytest.mark.e2e

e2e_stack_process, stack = e2e_stack(reservation_timeout_s=1)

BEER = [{"description": "Μπίρα", "quantity": D("1"), "unit_price": D("4.00"), "vat_category": 1}]


def test_expired_reservation_is_taken_by_the_next_receipt(stack: E2EStack) -> None:
    signed = stack.post(
        "/v1/payments/sign",
        {
            "request_id": "abandon-sign-1",
            "terminal_id": "TID1",
            "document_type": "11.1",
            "lines": BEER,
            "amount": D("4.00"),
        },
    )
    signature = parsed(signed, SignatureAnswer)
    reservation = stack.stored(signature.receipt_id)
    assert reservation.state == store.DocumentState.RESERVED
    assert reservation.reserved_until is not None
    numbers = stack.last_numbers()

    # The card was never charged; wait (on the clock, not a fixed sleep) until it has expired.
    wait_for(
        lambda: datetime.now(ATHENS).replace(microsecond=0) > reservation.reserved_until,
        timeout_s=10,
        what="the reservation to expire",
    )
    answer = stack.issue(cash_receipt("abandon-cash-1"))

    assert answer.state == "accepted"
    assert (answer.receipt_id, answer.number, answer.uid) == (
        reservation.id,
        reservation.number,
        reservation.uid,
    )
    assert datetime.fromisoformat(answer.issued_at) == reservation.issued_at
    assert stack.last_numbers() == numbers
    provider = stack.provider_document(reservation.uid)
    assert provider is not None and provider["submissions"] == 1
    with stack.database() as conn:
        assert store.numbering_gaps(conn) == {}

    # The old signature now belongs to another sale: it cannot be used any more.
    late = stack.post(
        "/v1/receipts",
        {
            "request_id": "abandon-card-late",
            "lines": BEER,
            "payments": [
                {
                    "method": 7,
                    "amount": D("4.00"),
                    "terminal_id": "TID1",
                    "transaction_id": "TX-LATE",
                    "signature_id": signature.signature_id,
                }
            ],
        },
    )
    assert late.status_code == 409, late.text
    assert stack.last_numbers() == numbers
