"""The frozen payloads read back typed, from the bytes the builders freeze: every amount with
the digits it was sent with, the 8.6's table, waiter and kind, the defaults a payload omits."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal as D

import pytest
from pydantic import ValidationError

from agent.clock import ATHENS
from agent.fiscal.document_builder import (
    internal_document_id,
    pos_payload,
    price_lines,
    receipt_payload,
)
from agent.fiscal.frozen_payloads import FrozenInvoice, FrozenPosReceipt
from agent.fiscal.orders import cancel_payload
from agent.fiscal.provider_payloads import DocumentIdentity, PaymentEntry
from agent.fiscal.receipt_model import PosReceiptRequest, ReceiptRequest
from agent.json_codec import dumps, loads
from tests.fiscal.fixtures import shop_config
from tests.fiscal.test_discounts import DISCOUNT_SALE
from tests.fiscal.test_orders import line, order_document

ISSUED = datetime(2026, 3, 2, 10, 15, tzinfo=ATHENS)
CARD = PaymentEntry(
    method=7,
    amount=D("9.60"),
    tip=D("1.00"),
    terminal_id="16000198",
    transaction_id="tx-1",
    pos_input="UID;;20260302101500;960;0;960;960;16000198",
    provider_signature="MEUCIQ",
)


def _sale(payments: list[PaymentEntry]) -> bytes:
    request = ReceiptRequest.model_validate(DISCOUNT_SALE)
    priced = price_lines(request.lines, prices_include_vat=True, discount=request.discount)
    identity = DocumentIdentity("11.1", "ΑΛΠ", 7, ISSUED, internal_document_id("11.1", "ΑΛΠ", 7))
    return dumps(receipt_payload(shop_config(), identity, request, priced, payments))


def test_a_receipt_reads_back_its_lines_vat_rows_and_payments_to_the_cent() -> None:
    frozen = FrozenInvoice.of_payload(_sale([CARD]))
    payload = loads(_sale([CARD]))
    assert [str(line.gross) for line in frozen.details] == ["5.70", "2.54", "1.36"]
    assert [str(line.discount) for line in frozen.details] == ["1.30", "0.26", "0.14"]
    assert frozen.details[0].description == "Καφές φίλτρου" and frozen.details[0].quantity == 2
    assert [(row.vat_category, row.net, row.vat) for row in frozen.vat_analysis] == [
        (row["VatCategoryCode"], row["UnderlyingValue"], row["VatAmount"])
        for row in payload["VatAnalysis"]
    ]
    assert str(frozen.summaries.gross) == "9.60"
    (card,) = frozen.payments
    assert (card.method, str(card.amount), str(card.tip)) == (7, "9.60", "1.00")
    assert (card.terminal_id, card.transaction_id, card.signature) == ("16000198", "tx-1", "MEUCIQ")
    assert card.signature_input == CARD.pos_input
    assert frozen.counterparty is None and frozen.table == "" and not frozen.is_cancellation


def test_a_cash_payment_has_no_card_fields() -> None:
    (cash,) = FrozenInvoice.of_payload(_sale([PaymentEntry(method=3, amount=D("9.60"))])).payments
    assert (cash.method, cash.terminal_id, cash.signature, cash.remarks) == (3, None, None, None)


def test_a_pos_receipt_reads_back_its_card_lines_and_a_whole_total_as_decimal() -> None:
    request = PosReceiptRequest.model_validate(
        {
            "request_id": "p1",
            "type": "8.4",
            "payments": [
                {"method": 7, "amount": "12", "terminal_id": "16000198", "transaction_id": "t9"}
            ],
            "connected_marks": [400001],
        }
    )
    identity = DocumentIdentity("8.4", "ΑΕΠ", 3, ISSUED, "8.4_ΑΕΠ_3")
    entry = PaymentEntry(method=7, amount=D("12"), terminal_id="16000198", transaction_id="t9")
    frozen = FrozenPosReceipt.of_payload(
        dumps(pos_payload(shop_config(), identity, request, [entry]))
    )
    assert isinstance(frozen.total, D) and frozen.total == 12
    (card,) = frozen.card_lines
    assert (card.method, card.amount, card.terminal_id, card.remarks) == (
        7,
        12,
        "16000198",
        "Κάρτα",
    )
    assert (card.signature, card.signature_input) == ("", "")
    assert frozen.connected_marks == [400001]
    assert frozen.counterparty is not None and (
        frozen.counterparty.vat,
        frozen.counterparty.name,
    ) == (
        "",
        "",
    )


def test_an_order_slip_reads_back_its_table_waiter_and_kind() -> None:
    order = FrozenInvoice.of_payload(dumps(order_document([line("Φρέντο", "2", "3.50")])))
    assert (order.table, order.waiter, order.is_cancellation) == ("12", "Μαρία", False)
    assert [detail.record_type for detail in order.details] == [0]
    assert order.payments == []  # an 8.6 carries no PaymentDetails
    returned = FrozenInvoice.of_payload(
        dumps(order_document([line("Φρέντο", "1", "3.50")], is_return=True))
    )
    assert [detail.record_type for detail in returned.details] == [7]
    cancel = FrozenInvoice.of_payload(
        dumps(
            cancel_payload(
                order_document([line("x", "1", "0.00")]), table="12", waiter="Νίκος", marks=[1, 2]
            )
        )
    )
    assert cancel.is_cancellation and cancel.connected_marks == [1, 2] and cancel.waiter == "Νίκος"
    assert cancel.cancels(2) and not cancel.cancels(3)


def test_a_payload_without_the_parts_a_printout_needs_is_refused() -> None:
    payload = loads(_sale([CARD]))
    del payload["Summaries"]
    with pytest.raises(ValidationError, match="Summaries"):
        FrozenInvoice.of_payload(dumps(payload))
    with pytest.raises(ValidationError, match="totalAmount"):
        FrozenPosReceipt.of_payload(_sale([CARD]))
