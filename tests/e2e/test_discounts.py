"""End to end, discounts: the daemon prices them, the sandbox checks the payload's allowances
add up, the printout shows them; a discount larger than its line is refused and writes nothing."""

from __future__ import annotations

import copy
from decimal import Decimal as D
from typing import Any

import pytest

from agent.core.answers import SignatureAnswer
from agent.fiscal.provider_payloads import payload_discount
from agent.json_codec import loads
from tests.e2e.stack import E2EStack, e2e_stack, parsed
from tests.e2e.test_cards import printed_texts
from tests.fiscal.test_discounts import DISCOUNT_SALE

pytestmark = pytest.mark.e2e

e2e_stack_process, stack = e2e_stack()


def _sale(request_id: str, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(DISCOUNT_SALE)
    body["request_id"] = request_id
    body.update(changes)
    return body


def test_discounted_sale_payload_printout_and_totals_agree(stack: E2EStack) -> None:
    answer = stack.issue(_sale("discount-e2e-1"))

    assert answer.state == "accepted" and answer.total == "9.60"
    payload = loads(stack.stored(answer.receipt_id).payload or b"")
    assert payload["Summaries"]["TotalGrossValue"] == D("9.60")
    assert payload_discount(payload) == D("1.70")
    # The sandbox refuses a payload whose allowances do not add up (400): it took this one.
    assert stack.provider_document(answer.uid)["mark"] == answer.mark
    texts = printed_texts(stack, answer.receipt_id)
    assert texts.count("ΕΚΠΤΩΣΗ -1,30") == 1  # 10 % of 7,00 and 0,60 of the receipt's 1,00
    assert "ΕΚΠΤΩΣΗ -0,26" in texts and "ΕΚΠΤΩΣΗ -0,14" in texts
    assert "ΑΞΙΑ ΠΡΟ ΕΚΠΤΩΣΗΣ 11,30" in texts and "ΕΚΠΤΩΣΗ -1,70" in texts
    assert "ΚΑΘΑΡΗ ΑΞΙΑ 8,05" in texts and "ΦΠΑ 1,55" in texts
    assert "ΣΥΝΟΛΟ 9,60 €" in texts


def test_card_signature_covers_the_discounted_amounts(stack: E2EStack) -> None:
    sale = _sale("discount-e2e-card")
    response = stack.post(
        "/v1/payments/sign",
        {
            "request_id": "discount-e2e-card-sign",
            "terminal_id": "16000198",
            "amount": "9.60",
            "lines": sale["lines"],
            "discount": sale["discount"],
        },
    )
    signed = parsed(response, SignatureAnswer)
    assert sorted(signed.fields.amounts_cents) == [155, 805, 960, 960]
    sale["payments"] = [
        {
            "method": 7,
            "amount": "9.60",
            "terminal_id": "16000198",
            "transaction_id": "T-DISC-1",
            "signature_id": signed.signature_id,
        }
    ]

    receipt = stack.issue(sale)

    assert (receipt.receipt_id, receipt.state) == (signed.receipt_id, "accepted")


def test_a_discount_above_its_line_is_refused_naming_the_line(stack: E2EStack) -> None:
    before = (stack.document_count(), stack.last_numbers())
    lines = copy.deepcopy(DISCOUNT_SALE["lines"])
    lines[2]["discount"] = {"amount": "1.51"}

    response = stack.post("/v1/receipts", _sale("discount-e2e-too-large", lines=lines))

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "discount_too_large"
    assert error["fields"][0]["path"] == "lines[2].discount.amount"
    assert (stack.document_count(), stack.last_numbers()) == before
