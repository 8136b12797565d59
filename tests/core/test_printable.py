"""A stored document as printed: amounts from the frozen payload, texts from the code tables."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import offline_store as store
from agent.clock import ATHENS
from agent.core.printable import printable_receipt
from agent.fiscal.document_builder import price_lines, receipt_payload
from agent.fiscal.provider_payloads import DocumentIdentity, PaymentEntry, payload_discount
from agent.fiscal.receipt_model import ReceiptRequest
from agent.json_codec import dumps, loads
from printers.samples import sample_discount_receipt
from tests.fiscal.fixtures import shop_config
from tests.fiscal.test_discounts import DISCOUNT_SALE

ISSUED = datetime(2026, 3, 2, 10, 15, tzinfo=ATHENS)


def stored(
    payload: dict[str, Any], request_json: str, *, kind: str = "receipt"
) -> store.StoredDocument:
    type_code = payload.get("InvoiceTypeCode") or payload["invoiceTypeCode"]
    return store.StoredDocument(
        id=1,
        request_id="r1",
        request_hash="h",
        kind=store.DocumentKind(kind),
        type_code=type_code,
        series="ΑΛΠ",
        number=7,
        issued_at=ISSUED,
        uid="A" * 40,
        internal_id=f"{type_code}_ΑΛΠ_7",
        request_json=request_json,
        payload=dumps(payload),
        total_amount=Decimal("10.00"),
        state=store.DocumentState.ACCEPTED,
        delayed_code=0,
        due_at=None,
        attempts=1,
        next_attempt_at=None,
        last_error=None,
        mark=400000000000007,
        mark_unknown=False,
        authentication_code="AUTH",
        qr_url="https://portal/v/x",
        offline_qr_url=None,
        reserved_until=None,
        created_at=ISSUED,
        updated_at=ISSUED,
    )


def receipt_document(request: ReceiptRequest, payments: list[PaymentEntry]) -> store.StoredDocument:
    config = shop_config()
    identity = DocumentIdentity(request.type, "ΑΛΠ", 7, ISSUED, f"{request.type}_ΑΛΠ_7")
    priced = price_lines(request.lines, prices_include_vat=True)
    payload = receipt_payload(config, identity, request, priced, payments)
    return stored(payload, request.model_dump_json())


def test_zero_rate_line_prints_the_exemption_cause_as_aade_words_it() -> None:
    request = ReceiptRequest.model_validate(
        {
            "request_id": "r1",
            "lines": [
                {
                    "description": "Βιβλίο",
                    "quantity": 1,
                    "unit_price": "10.00",
                    "vat_category": 7,
                    "exemption_cause": 14,
                }
            ],
            "payments": [{"method": 3, "amount": "10.00"}],
        }
    )
    doc = receipt_document(request, [PaymentEntry(method=3, amount=Decimal("10.00"))])

    receipt = printable_receipt(shop_config(), doc, copy=False)

    assert receipt.lines[0].exemption == "Χωρίς ΦΠΑ - άρθρο 28 του Κώδικα ΦΠΑ"
    assert receipt.footer == ("SOFTONE ΤΕΧΝΟΛΟΓΙΑ Α.Ε.", "www.s1ecos.gr", "ΥΠΑΗΕΣ-TEST-0001")


def test_a_discounted_sale_prints_what_its_payload_carries_to_the_cent() -> None:
    """The sale of docs/receipts/discount-80mm.png, issued by the fiscal rules: the printout's
    lines, discounts, VAT analysis and totals are the payload's (and the preview's)."""
    request = ReceiptRequest.model_validate(DISCOUNT_SALE)
    config = shop_config()
    identity = DocumentIdentity("11.1", "ΑΛΠ", 7, ISSUED, "11.1_ΑΛΠ_7")
    priced = price_lines(request.lines, prices_include_vat=True, discount=request.discount)
    payments = [PaymentEntry(method=3, amount=Decimal("9.60"))]
    payload = receipt_payload(config, identity, request, priced, payments)
    printed = printable_receipt(config, stored(payload, request.model_dump_json()), copy=False)
    sample = sample_discount_receipt()
    assert [(line.total, line.discount, line.unit_price) for line in printed.lines] == [
        (line.total, line.discount, line.unit_price) for line in sample.lines
    ]
    assert printed.vat_analysis == sample.vat_analysis
    assert printed.totals == sample.totals
    assert printed.totals.discount == payload_discount(loads(dumps(payload)))
    assert printed.totals.gross + printed.totals.discount == sum(
        line.quantity * line.unit_price for line in printed.lines
    )
