"""End to end, card payments (Α.1155/2023): sign before charging, issue on the reserved identity,
a declined card signs again for the same receipt, a changed total is refused, and 8.4 POS
receipts connected to an 11.1."""

from __future__ import annotations

import base64
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import offline_store as store
from agent.config import load_config
from agent.core.answers import DocumentAnswer, PaymentAnswer, SignatureAnswer
from agent.core.printable import printable_receipt
from agent.core.returns import original_of
from agent.json_codec import loads
from printers.blocks import Row, TextLine
from printers.layout import build_layout
from tests.e2e.stack import E2EStack, e2e_stack, parsed, wait_for
from tests.fiscal.qa_shapes import qa_body, shape_differences

pytestmark = pytest.mark.e2e

e2e_stack_process, stack = e2e_stack()

TERMINAL = "TID00042"


def _lines(price: str = "4.20", quantity: str = "2") -> list[dict[str, Any]]:
    return [
        {
            "description": "Σάντουιτς",
            "quantity": D(quantity),
            "unit_price": D(price),
            "vat_category": 2,
        }
    ]


def _sign(stack: E2EStack, request_id: str, **fields: Any) -> SignatureAnswer:
    body = {"request_id": request_id, "terminal_id": TERMINAL, **fields}
    return parsed(stack.post("/v1/payments/sign", body), SignatureAnswer)


def verify_signature(stack: E2EStack, signature: str, signed_input: str) -> None:
    """The provider's ECDSA P-256 / SHA-256 signature verifies over the signed input (raises if
    not)."""
    key = serialization.load_pem_public_key(stack.public_key_pem())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(base64.b64decode(signature), signed_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))


def _verify(stack: E2EStack, signed: SignatureAnswer) -> None:
    verify_signature(stack, signed.signature, signed.input)


def _card(signed: SignatureAnswer, amount: D, transaction: str) -> dict[str, Any]:
    return {
        "method": 7,
        "amount": amount,
        "terminal_id": TERMINAL,
        "transaction_id": transaction,
        "signature_id": signed.signature_id,
    }


def _receipt(
    request_id: str, *payments: dict[str, Any], lines: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {"request_id": request_id, "lines": lines or _lines(), "payments": list(payments)}


def _marked_receipt(stack: E2EStack, request_id: str) -> DocumentAnswer:
    """An accepted receipt paid on credit (method 5), to be paid by card later the same day."""
    receipt = stack.issue(_receipt(request_id, {"method": 5, "amount": D("8.40")}))
    assert receipt.state == "accepted"
    return receipt


def _payment(request_id: str, signed: SignatureAnswer, transaction_id: str) -> dict[str, Any]:
    """The body of `POST /v1/receipts/{id}/payments` for a signature made with receipt_id."""
    return {
        "request_id": request_id,
        "signature_id": signed.signature_id,
        "transaction_id": transaction_id,
    }


def printed_texts(stack: E2EStack, receipt_id: int) -> list[str]:
    """Wait until the receipt is printed; the lines of its layout. A printed job keeps no
    layout (it is rebuilt from the document, as a reprint does), so it is rebuilt here."""

    def printed() -> tuple[store.StoredDocument, store.StoredDocument | None] | None:
        with stack.database() as conn:
            row = conn.execute(
                "SELECT 1 FROM print_jobs WHERE document_id = ? AND state = 'printed'",
                (receipt_id,),
            ).fetchone()
            doc = None if row is None else store.get_document(conn, receipt_id)
            return None if doc is None else (doc, original_of(conn, doc))

    doc, original = wait_for(printed, timeout_s=20, what=f"receipt {receipt_id} printed")
    config = load_config(stack.stack.config_path)
    receipt = printable_receipt(config, doc, copy=False, original=original)
    texts = []
    for block in build_layout(receipt, 48).blocks:
        if isinstance(block, TextLine):
            texts.append(block.text.strip())
        elif isinstance(block, Row):
            texts.append(f"{block.left.strip()} {block.right}".strip())
    return texts


def _payment_events(stack: E2EStack, receipt_id: int) -> list[str]:
    with stack.database() as conn:
        rows = conn.execute(
            "SELECT event FROM journal_named WHERE document_id = ? AND event LIKE 'payment.%' "
            "ORDER BY seq",
            (receipt_id,),
        )
        return [row["event"] for row in rows]


def test_sign_then_issue_on_the_signed_identity(stack: E2EStack) -> None:
    signed = _sign(stack, "card-sign-1", document_type="11.1", lines=_lines(), amount=D("8.40"))

    for key in ("input", "signature", "fields", "expires_at", "receipt_id", "signature_id"):
        assert getattr(signed, key), key
    assert signed.signature_duration == "H_24"
    assert signed.fields.uid == signed.uid
    assert signed.fields.terminal_id == TERMINAL
    assert sorted(signed.fields.amounts_cents) == sorted([743, 97, 840, 840])
    assert signed.input.split(";")[0] == signed.uid
    _verify(stack, signed)
    assert stack.stored(signed.receipt_id).state.value == "reserved"

    response = stack.post(
        "/v1/receipts", _receipt("card-receipt-1", _card(signed, D("8.40"), "TX-1"))
    )

    receipt = parsed(response, DocumentAnswer)
    assert receipt.state == "accepted"
    for key in ("receipt_id", "series", "number", "uid", "issued_at"):
        assert getattr(receipt, key) == getattr(signed, key), key
    provider = stack.provider_document(receipt.uid)
    assert provider is not None and provider["submissions"] == 1
    assert provider["mark"] == receipt.mark
    payload = loads(stack.stored(receipt.receipt_id).payload)
    card = payload["PaymentDetails"]["PaymentMethods"][0]
    assert card["PaymentMethodTypeCode"] == 7
    assert card["providersSignature"] == signed.signature
    assert card["posInput"] == signed.input

    reused = stack.post(
        "/v1/receipts", _receipt("card-receipt-1b", _card(signed, D("8.40"), "TX-1"))
    )
    assert reused.status_code == 409, reused.text


def test_declined_card_signs_again_for_the_same_number(stack: E2EStack) -> None:
    first = _sign(stack, "card-decline-1", document_type="11.1", lines=_lines(), amount=D("8.40"))
    numbers = stack.last_numbers()

    again = _sign(stack, "card-decline-2", receipt_id=first.receipt_id, amount=D("8.40"))

    assert again.signature_id != first.signature_id
    assert again.signature != first.signature
    for key in ("receipt_id", "series", "number", "uid", "issued_at"):
        assert getattr(again, key) == getattr(first, key), key
    assert stack.last_numbers() == numbers
    _verify(stack, again)

    superseded = stack.post(
        "/v1/receipts", _receipt("card-decline-receipt-old", _card(first, D("8.40"), "TX-2"))
    )
    assert superseded.status_code == 409, superseded.text
    assert superseded.json()["error"]["code"] == "signature_not_active"

    response = stack.post(
        "/v1/receipts", _receipt("card-decline-receipt", _card(again, D("8.40"), "TX-3"))
    )
    receipt = parsed(response, DocumentAnswer)
    assert receipt.state == "accepted"
    assert (receipt.receipt_id, receipt.number, receipt.uid) == (
        first.receipt_id,
        first.number,
        first.uid,
    )
    assert stack.last_numbers() == numbers


def test_receipt_total_differing_from_the_signed_one_is_refused(stack: E2EStack) -> None:
    signed = _sign(stack, "card-total-1", document_type="11.1", lines=_lines(), amount=D("8.40"))
    count, numbers = stack.document_count(), stack.last_numbers()

    response = stack.post(
        "/v1/receipts",
        _receipt(
            "card-total-receipt",
            _card(signed, D("8.40"), "TX-4"),
            {"method": 3, "amount": D("4.20")},
            lines=_lines(quantity="3"),
        ),
    )

    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "signed_total_differs"
    assert stack.document_count() == count
    assert stack.last_numbers() == numbers
    assert stack.stored(signed.receipt_id).state.value == "reserved"


def test_pos_receipt_then_connected_sales_receipt(stack: E2EStack) -> None:
    signed = _sign(stack, "card-84-sign", document_type="8.4", amount=D("6.00"))
    _verify(stack, signed)
    pos = stack.post(
        "/v1/pos-receipts",
        {"request_id": "card-84", "payments": [_card(signed, D("6.00"), "TX-84")]},
    )
    pos_receipt = parsed(pos, DocumentAnswer)
    assert pos_receipt.type == "8.4"
    assert pos_receipt.state == "accepted"
    assert pos_receipt.number == signed.number

    sale = stack.post(
        "/v1/receipts",
        {
            "request_id": "card-84-sale",
            "lines": _lines(price="3.00"),
            "connected_marks": [pos_receipt.mark],
        },
    )

    receipt = parsed(sale, DocumentAnswer)
    assert receipt.type == "11.1"
    assert receipt.state == "accepted"
    pos_provider = stack.provider_document(pos_receipt.uid)
    sale_provider = stack.provider_document(receipt.uid)
    assert pos_provider is not None and pos_provider["endpoint"] == "receipt"
    assert pos_provider["type"] == "8.4"
    assert sale_provider is not None and sale_provider["submissions"] == 1
    # The sandbox does not expose connected MARKs; the frozen payload the agent sent does.
    payload = loads(stack.stored(receipt.receipt_id).payload)
    assert payload["multipleConnectedMarks"] == [pos_receipt.mark]
    # It carries the 8.4's card payment as the provider's QA flow does (TC 02 step 4).
    [card] = payload["PaymentDetails"]["PaymentMethods"]
    assert shape_differences(qa_body("tc02_step4_payment.json"), card) == []
    assert (card["PaymentMethodTypeCode"], card["Amount"]) == (7, D("6.00"))
    assert (card["transactionId"], card["terminalId"]) == ("TX-84", TERMINAL)
    assert (card["providersSignature"], card["posInput"]) == ("", "")
    texts = printed_texts(stack, receipt.receipt_id)
    assert "ΚΑΡΤΑ 6,00" in texts
    reference = f"Απόδειξη Είσπραξης POS {pos_receipt.series} {pos_receipt.number},"
    assert any(text.startswith(reference) for text in texts), texts
    assert f"ΜΑΡΚ {pos_receipt.mark}" in " ".join(texts)


def test_connected_mark_of_no_pos_receipt_here_is_refused(stack: E2EStack) -> None:
    count = stack.document_count()
    response = stack.post(
        "/v1/receipts",
        {"request_id": "card-84-unknown", "lines": _lines(price="3.00"), "connected_marks": [7]},
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "connected_receipt_unknown"
    assert error["fields"][0]["path"] == "connected_marks[0]"
    assert stack.document_count() == count


def test_refund_to_a_card_with_an_11_4_credit_note(stack: E2EStack) -> None:
    """Α.1155/2023 covers refunds: the 11.4 is signed before the terminal pays back, issued on
    the signed identity, accepted and printed with the refund's card details."""
    sale = _marked_receipt(stack, "refund-114-sale")
    signed = _sign(stack, "refund-114-sign", document_type="11.4", lines=_lines(), amount=D("8.40"))
    _verify(stack, signed)
    assert signed.type == "11.4"

    response = stack.post(
        "/v1/receipts",
        {
            **_receipt("refund-114", _card(signed, D("8.40"), "TX-REFUND-114")),
            "type": "11.4",
            "correlated_marks": [sale.mark],
        },
    )

    credit = parsed(response, DocumentAnswer)
    assert (credit.type, credit.state) == ("11.4", "accepted")
    assert (credit.receipt_id, credit.uid) == (signed.receipt_id, signed.uid)
    provider = stack.provider_document(credit.uid)
    assert provider is not None and provider["type"] == "11.4"
    payload = loads(stack.stored(credit.receipt_id).payload)
    [card] = payload["PaymentDetails"]["PaymentMethods"]
    assert (card["providersSignature"], card["posInput"]) == (signed.signature, signed.input)
    assert payload["CorrelatedInvoices"] == [sale.mark]
    texts = printed_texts(stack, credit.receipt_id)
    assert "ΠΙΣΤΩΤΙΚΟ ΣΤΟΙΧΕΙΟ ΛΙΑΝΙΚΗΣ" in texts
    assert "Αρ. συναλλαγής: TX-REFUND-114" in texts


def test_refund_to_a_card_with_an_8_5_pos_return_then_its_11_4(stack: E2EStack) -> None:
    """The 8.5 flow end to end: a card sale (8.4 + connected 11.1), then its refund: the 8.5 is
    signed and issued, and the 11.4 connected to it carries the refund's card payment."""
    sale_signed = _sign(stack, "refund-85-sale-sign", document_type="8.4", amount=D("8.40"))
    pos = stack.issue(
        {"request_id": "refund-85-sale-84", "payments": [_card(sale_signed, D("8.40"), "TX-S")]},
        "/v1/pos-receipts",
    )
    sale = stack.issue(
        {"request_id": "refund-85-sale", "lines": _lines(), "connected_marks": [pos.mark]}
    )
    assert (pos.state, sale.state) == ("accepted", "accepted")

    signed = _sign(stack, "refund-85-sign", document_type="8.5", amount=D("8.40"))
    _verify(stack, signed)
    returned = stack.post(
        "/v1/pos-receipts",
        {
            "request_id": "refund-85",
            "type": "8.5",
            "payments": [_card(signed, D("8.40"), "TX-REFUND-85")],
            "connected_marks": [pos.mark],
        },
    )
    pos_return = parsed(returned, DocumentAnswer)
    assert (pos_return.type, pos_return.state) == ("8.5", "accepted")
    assert pos_return.number == signed.number
    provider = stack.provider_document(pos_return.uid)
    assert provider is not None and (provider["type"], provider["endpoint"]) == ("8.5", "receipt")
    payload = loads(stack.stored(pos_return.receipt_id).payload)
    assert shape_differences(qa_body("receipt_8_4.json"), payload, skip=("issuer.",)) == []
    assert payload["cardlines"][0]["providersSignature"] == signed.signature
    texts = printed_texts(stack, pos_return.receipt_id)
    assert "ΑΠΟΔΕΙΞΗ ΕΠΙΣΤΡΟΦΗΣ POS" in texts
    assert not [text for text in texts if text.startswith(("ΚΑΘΑΡΗ ΑΞΙΑ", "ΦΠΑ "))]

    credit = stack.post(
        "/v1/receipts",
        {
            "request_id": "refund-85-credit",
            "type": "11.4",
            "lines": _lines(),
            "correlated_marks": [sale.mark],
            "connected_marks": [pos_return.mark],
        },
    )
    refund = parsed(credit, DocumentAnswer)
    assert refund.state == "accepted"
    [card] = loads(stack.stored(refund.receipt_id).payload)["PaymentDetails"]["PaymentMethods"]
    assert (card["PaymentMethodTypeCode"], card["transactionId"]) == (7, "TX-REFUND-85")
    credit_texts = printed_texts(stack, refund.receipt_id)
    assert any(text.startswith("Απόδειξη Επιστροφής POS") for text in credit_texts)


def test_provider_unreachable_while_signing_is_autonomous(stack: E2EStack) -> None:
    numbers = stack.last_numbers()
    stack.set_faults("down")

    response = stack.post(
        "/v1/payments/sign",
        {
            "request_id": "card-autonomous-1",
            "terminal_id": TERMINAL,
            "document_type": "11.1",
            "lines": _lines(),
            "amount": D("8.40"),
        },
    )

    assert response.status_code == 503, response.text
    body = response.json()
    assert body["mode"] == "autonomous"
    assert body["reason"] == "InterconnectionLoss"
    # The released reservation is taken by the next receipt of the series: no silent gap.
    stack.reset()
    reserved_number = numbers.get("ΑΛΠ", 0) + 1
    unsigned_card = {
        "method": 7,
        "amount": D("8.40"),
        "terminal_id": TERMINAL,
        "transaction_id": "TX-AUTO",
    }
    autonomous = stack.issue(_receipt("card-autonomous-receipt", unsigned_card))
    assert (autonomous.number, autonomous.state) == (reserved_number, "accepted")


def test_card_payment_on_a_marked_receipt_updates_the_provider(stack: E2EStack) -> None:
    """A receipt issued with another method gets its card payment later the same day:
    sign with the MARK, charge, then /Invoice/updatePayment (journaled before the call)."""
    receipt = _marked_receipt(stack, "later-card-1")

    signed = _sign(stack, "later-card-sign-1", amount=D("8.40"), receipt_id=receipt.receipt_id)
    assert signed.receipt_id == receipt.receipt_id
    assert signed.fields.mark == str(receipt.mark)
    assert signed.number == receipt.number

    body = _payment("later-card-pay-1", signed, "TX-LATER-1")
    paid = stack.post(f"/v1/receipts/{receipt.receipt_id}/payments", body)
    assert paid.status_code == 201, paid.text
    answer = paid.json()
    typed = PaymentAnswer.model_validate(answer)
    assert typed.mark == receipt.mark
    assert typed.payment_mark and isinstance(answer["payment_mark"], str)
    assert (typed.transaction_id, typed.amount) == ("TX-LATER-1", "8.40")

    replay = stack.post(f"/v1/receipts/{receipt.receipt_id}/payments", body)
    assert (replay.status_code, replay.json()) == (201, answer)
    again = stack.post(
        f"/v1/receipts/{receipt.receipt_id}/payments",
        {**body, "request_id": "later-card-pay-2"},
    )
    assert again.status_code == 409, again.text  # the signature was used

    assert _payment_events(stack, receipt.receipt_id) == [
        "payment.update_sending",  # journaled before the call
        "payment.updated",
    ]


def test_payment_with_an_expired_signature_is_refused_before_any_call(stack: E2EStack) -> None:
    receipt = _marked_receipt(stack, "late-expired-1")
    signed = _sign(stack, "late-expired-sign-1", amount=D("8.40"), receipt_id=receipt.receipt_id)
    # The day passes in the store (the daemon runs on the real clock).
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    with closing(sqlite3.connect(stack.stack.database_path)) as conn, conn:
        conn.execute(
            "UPDATE payment_signatures SET expires_at = ? WHERE id = ?",
            (past, signed.signature_id),
        )
    body = _payment("late-expired-pay-1", signed, "TX-EXPIRED-1")
    paid = stack.post(f"/v1/receipts/{receipt.receipt_id}/payments", body)
    assert paid.status_code == 409, paid.text
    error = paid.json()["error"]
    assert error["code"] == "signature_expired"
    assert error["fields"] == [{"path": "signature_id", "message": "expired"}]
    assert _payment_events(stack, receipt.receipt_id) == []  # nothing was sent


def test_payment_while_the_provider_is_down_opens_the_breaker(stack: E2EStack) -> None:
    """A failed updatePayment counts like a failed send: the breaker opens, so the next payment
    and the next receipt are answered at once instead of after the whole timeout."""
    receipt = _marked_receipt(stack, "late-down-1")
    signed = _sign(stack, "late-down-sign-1", amount=D("8.40"), receipt_id=receipt.receipt_id)
    body = _payment("late-down-pay-1", signed, "TX-DOWN-1")
    path = f"/v1/receipts/{receipt.receipt_id}/payments"
    stack.set_faults("down")
    try:
        failed = stack.post(path, body)
        assert failed.status_code == 503, failed.text
        assert failed.json()["error"]["code"] == "provider_unreachable"
        assert stack.breaker() == "open"
        again = stack.post(path, body)
        assert again.status_code == 503, again.text
        offline = stack.issue(_receipt("late-down-cash-1", {"method": 3, "amount": D("8.40")}))
        assert offline.state == "delayed", offline
    finally:
        stack.set_faults("ok")
    stack.close_breaker()
    paid = stack.post(path, body)  # the same request_id, retried once the provider is back
    assert paid.status_code == 201, paid.text
    assert _payment_events(stack, receipt.receipt_id) == [
        "payment.update_sending",  # the one call that reached a down provider
        "payment.update_sending",
        "payment.updated",
    ]


def test_payment_replay_names_the_same_receipt(stack: E2EStack) -> None:
    """The receipt is in the URL, not in the body: the same request_id and body sent for another
    receipt is a conflict, not the first receipt's answer."""
    receipt = _marked_receipt(stack, "later-card-bound-1")
    other = _marked_receipt(stack, "later-card-bound-2")
    signed = _sign(stack, "later-card-bound-sign", amount=D("8.40"), receipt_id=receipt.receipt_id)
    body = _payment("later-card-bound-pay", signed, "TX-BOUND")
    paid = stack.post(f"/v1/receipts/{receipt.receipt_id}/payments", body)
    assert paid.status_code == 201, paid.text

    elsewhere = stack.post(f"/v1/receipts/{other.receipt_id}/payments", body)

    assert elsewhere.status_code == 409, elsewhere.text
    assert elsewhere.json()["error"]["code"] == "request_id_reused"
