"""End to end, returns named by receipt id: a return of a receipt still offline is issued at
once (offline, its own QR, printed with the original's series and number), waits behind its
original and goes out with the original's MARK; a return of more than the original is refused."""

from __future__ import annotations

from typing import Any

import pytest

from agent.json_codec import loads
from tests.e2e.stack import E2EStack, cash_receipt, e2e_stack, quiet_settings
from tests.e2e.test_cards import printed_texts

pytestmark = pytest.mark.e2e

# No background sync or probe: what goes out, and when, is what the test does.
_quiet = quiet_settings()
e2e_stack_process, stack = e2e_stack(
    sync_interval_s=_quiet.sync_interval_s, probe_interval_s=_quiet.probe_interval_s
)


def _credit(request_id: str, original_id: int, quantity: str = "2") -> dict[str, Any]:
    body = cash_receipt(request_id, quantity=quantity)
    return {**body, "type": "11.4", "correlated_receipt_id": original_id}


def _pos(request_id: str, type_code: str, amount: str, **extra: Any) -> dict[str, Any]:
    payment = {
        "method": 7,
        "amount": amount,
        "terminal_id": "16000198",
        "transaction_id": f"T-{request_id}",
    }
    return {"request_id": request_id, "type": type_code, "payments": [payment], **extra}


def test_return_during_an_outage_goes_out_after_its_original_with_its_mark(
    stack: E2EStack,
) -> None:
    stack.set_faults("down")
    sale = stack.issue(cash_receipt("ret-outage-sale", quantity="3"))
    assert sale.state == "delayed" and sale.mark is None

    credit = stack.issue(_credit("ret-outage-credit", sale.receipt_id))

    assert credit.state == "delayed" and credit.delayed_code == 1
    assert "TransmissionFailure" in credit.offline_qr_url
    texts = printed_texts(stack, credit.receipt_id)
    assert "Επιστροφή για: ΑΠΟΔΕΙΞΗ ΛΙΑΝΙΚΗΣ ΠΩΛΗΣΗΣ" in texts
    assert any(text.startswith(f"Σειρά {sale.series} Αριθμός {sale.number} ") for text in texts)
    frozen = stack.stored(credit.receipt_id).payload

    stack.set_faults("ok")
    stack.sync_until_accepted([sale.receipt_id, credit.receipt_id])

    original = stack.provider_document(sale.uid)
    returned = stack.provider_document(credit.uid)
    assert original is not None and returned is not None
    assert returned["correlated"] == [original["mark"]]
    assert original["mark"] < returned["mark"]  # the sandbox numbers MARKs as it accepts
    assert returned["is_delayed_code"] == 1 and returned["submissions"] == 1
    # The frozen payload is as it was: the MARK goes into what is sent, not into the store.
    assert stack.stored(credit.receipt_id).payload == frozen
    assert loads(frozen)["CorrelatedInvoices"] == []
    reprinted = printed_texts(stack, credit.receipt_id)
    assert f"ΜΑΡΚ {original['mark']}" in reprinted


def test_pos_return_of_an_offline_pos_receipt_carries_its_mark(stack: E2EStack) -> None:
    stack.set_faults("down")
    paid = stack.issue(_pos("ret-pos-84", "8.4", "12.00"), "/v1/pos-receipts")
    back = stack.issue(
        _pos("ret-pos-85", "8.5", "12.00", correlated_receipt_id=paid.receipt_id),
        "/v1/pos-receipts",
    )
    assert back.state == "delayed"

    stack.set_faults("ok")
    stack.sync_until_accepted([paid.receipt_id, back.receipt_id])

    returned = stack.provider_document(back.uid)
    assert returned is not None
    assert returned["correlated"] == [stack.provider_document(paid.uid)["mark"]]


def test_return_of_an_accepted_receipt_is_sent_at_once_with_its_mark(stack: E2EStack) -> None:
    sale = stack.issue(cash_receipt("ret-online-sale"))
    credit = stack.issue(_credit("ret-online-credit", sale.receipt_id))

    assert credit.state == "accepted"
    assert loads(stack.stored(credit.receipt_id).payload)["CorrelatedInvoices"] == [sale.mark]
    assert stack.provider_document(credit.uid)["correlated"] == [sale.mark]


def test_a_return_of_more_than_the_original_is_refused_naming_the_line(
    stack: E2EStack,
) -> None:
    stack.set_faults("down")
    sale = stack.issue(cash_receipt("ret-over-sale", quantity="3"))
    stack.issue(_credit("ret-over-first", sale.receipt_id, quantity="2"))
    before = (stack.document_count(), stack.last_numbers())

    over = stack.post("/v1/receipts", _credit("ret-over-second", sale.receipt_id, quantity="2"))
    pos_over = stack.post(
        "/v1/pos-receipts",
        _pos("ret-over-85", "8.5", "1.00", correlated_receipt_id=sale.receipt_id),
    )
    other = {**_credit("ret-over-other", sale.receipt_id, quantity="1")}
    other["lines"] = [{**other["lines"][0], "description": "Άλλο είδος"}]
    unknown_item = stack.post("/v1/receipts", other)

    assert over.status_code == 422, over.text
    assert over.json()["error"]["code"] == "return_exceeds_original"
    assert over.json()["error"]["fields"][0]["path"] == "lines[0].quantity"
    assert pos_over.status_code == 422
    assert pos_over.json()["error"]["code"] == "original_not_returnable"
    assert unknown_item.status_code == 422
    assert unknown_item.json()["error"]["fields"][0]["path"] == "lines[0]"
    assert (stack.document_count(), stack.last_numbers()) == before
