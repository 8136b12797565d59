"""Order slips (8.6) and the closing 11.1 as the provider's QA suite sends them
(docs/provider.md §13); what is left on a table; returns limited to what was ordered."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal as D
from typing import Any

import pytest
from pydantic import ValidationError

from agent.clock import ATHENS
from agent.fiscal.document_builder import (
    document_identity,
    price_lines,
    series_for,
)
from agent.fiscal.orders import (
    OrderRequest,
    PlacedOrder,
    ReturnExceedsOrders,
    SlipCancellation,
    cancel_payload,
    check_return,
    closing_lines,
    negative_items,
    order_payload,
    table_items,
)
from agent.fiscal.provider_payloads import invoice_payload, set_delayed_code
from agent.fiscal.receipt_model import Delivery, ReceiptLine
from agent.json_codec import dumps, loads
from tests.fiscal.fixtures import shop_config

ISSUED = datetime(2026, 11, 21, 13, 42, 30, tzinfo=ATHENS)


def line(description: str, quantity: str, price: str, vat: int = 2) -> ReceiptLine:
    return ReceiptLine(
        description=description, quantity=D(quantity), unit_price=D(price), vat_category=vat
    )


def order_document(lines: list[ReceiptLine], *, is_return: bool = False) -> dict[str, Any]:
    config = shop_config()
    priced = price_lines(lines, prices_include_vat=True)
    document = invoice_payload(
        issuer=config.issuer,
        identity=document_identity("8.6", series_for(config, "8.6"), 4, ISSUED),
        lines=priced.lines,
        vat_buckets=priced.vat_buckets,
        totals=priced.totals,
        payments=[],
        customer=None,
        delivery=Delivery(),
        correlated_marks=[],
        connected_marks=[],
        iapr_sign_policy=2,
    )
    return order_payload(document, table="12", waiter="Μαρία", is_return=is_return)


def test_an_order_slip_has_the_qa_suites_shape() -> None:
    document = loads(dumps(order_document([line("Φρέντο", "2", "3.50")])))
    assert next(iter(document)) == "IsDelayedCode"  # a retry may still change only that digit
    assert document["InvoiceTypeCode"] == "8.6" and document["InvoiceType"] == "FNB Form 8.6"
    assert document["Series"] == "ΔΠΕ" and document["tableId"] == "12"
    assert document["totalCancelDeliveryOrders"] is False
    assert document["DistributionDetails"] == {
        "InternalDocumentId": "8.6_ΔΠΕ_4",
        "salesman": "Μαρία",
    }
    assert "PaymentDetails" not in document
    (detail,) = document["Details"]
    assert detail["RecordTypeCode"] == 0
    assert detail["IncomeClassification"]["ClassificationCategoryCode"] == "category1_95"
    assert document["Summaries"]["TotalGrossValue"] == D("7.00")
    assert set_delayed_code(dumps(document), 1).startswith(b'{"IsDelayedCode":1,')


def test_a_return_carries_record_type_7_on_every_line() -> None:
    document = order_document(
        [line("Φρέντο", "1", "3.50"), line("Νερό", "1", "0.50")], is_return=True
    )
    assert [d["RecordTypeCode"] for d in document["Details"]] == [7, 7]
    assert document["Summaries"]["TotalGrossValue"] == D("4.00")  # amounts stay positive


def test_a_cancellation_names_the_marks_and_is_flagged() -> None:
    document = cancel_payload(
        order_document([line("x", "1", "0.00")]), table="12", waiter="Μαρία", marks=[400001]
    )
    assert document["totalCancelDeliveryOrders"] is True
    assert document["multipleConnectedMarks"] == [400001]
    read_back = SlipCancellation.of_payload(dumps(document))
    assert read_back.cancels(400001) and not read_back.cancels(400002)
    order = SlipCancellation.of_payload(dumps(order_document([line("x", "1", "1.00")])))
    assert not order.cancels(400001)


def test_a_table_nets_its_returns_and_closes_at_zero_with_one_zero_line() -> None:
    orders = [
        PlacedOrder(False, [line("Φρέντο", "2", "3.50"), line("Τοστ", "1", "4.00")]),
        PlacedOrder(True, [line("Φρέντο", "1", "3.50")]),
        PlacedOrder(False, [line("Φρέντο", "1", "3.50")]),
    ]
    items = table_items(orders)
    remaining = closing_lines(items, fallback_vat_category=2)
    assert [(item.description, item.quantity) for item in remaining] == [
        ("Φρέντο", D("2")),
        ("Τοστ", D("1")),
    ]
    zeroed = table_items([orders[0], PlacedOrder(True, orders[0].lines)])
    (only,) = closing_lines(zeroed, fallback_vat_category=2)
    assert only.unit_price == D("0.00") and only.vat_category == 2  # the table's VAT, as QA does


def test_a_return_may_not_exceed_what_the_table_has() -> None:
    items = table_items([PlacedOrder(False, [line("Φρέντο", "2", "3.50")])])
    check_return(items, [line("Φρέντο", "2", "3.50")])
    with pytest.raises(ReturnExceedsOrders) as refused:
        check_return(items, [line("Φρέντο", "1", "3.50"), line("Φρέντο", "2", "3.50")])
    assert [problem.path for problem in refused.value.fields] == ["lines[1]"]
    with pytest.raises(ReturnExceedsOrders):
        check_return(items, [line("Φρέντο", "1", "3.60")])  # another price is another item
    assert negative_items(table_items([PlacedOrder(True, [line("Τοστ", "1", "4")])]))


def test_an_order_request_names_its_table_and_waiter() -> None:
    body = {
        "request_id": "o1",
        "table": " 12 ",
        "waiter": "Μαρία",
        "lines": [line("x", "1", "1").model_dump()],
    }
    assert OrderRequest.model_validate(body).table == "12"
    for table in ("", "12/3", "a" * 21):
        with pytest.raises(ValidationError, match="table"):
            OrderRequest.model_validate({**body, "table": table})
    with pytest.raises(ValidationError, match="lines"):
        OrderRequest.model_validate({**body, "lines": []})
