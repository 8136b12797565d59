"""A stored document as the plain `PrintableReceipt` the printers package understands.

Amounts come from the frozen provider payload (what the provider and AADE see), the gross unit
prices from the validated request; printers never see database rows.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import offline_store as store
from agent.config import AgentConfig
from agent.fiscal.orders import ORDER_TYPE, RETURN_RECORD_TYPE
from agent.fiscal.tax_codes import (
    EXEMPTION_CAUSE_TEXTS,
    MEASUREMENT_UNITS,
    PAYMENT_METHODS,
    VAT_RATES,
)
from agent.fiscal.uid import bare_vat
from agent.json_codec import loads
from printers.receipt import (
    CardDetails,
    Customer,
    Issuer,
    OrderSlip,
    OriginalDocument,
    Payment,
    PrintableReceipt,
    ReceiptLine,
    Totals,
    VatBreakdown,
)


def _dec(value: Decimal | int) -> Decimal:
    """The frozen JSON writes `2`, not `2.00`, for whole numbers; the model wants Decimal."""
    return value if isinstance(value, Decimal) else Decimal(value)


PAYMENT_LABELS = {3: "ΜΕΤΡΗΤΑ", 7: "ΚΑΡΤΑ", 5: "ΕΠΙ ΠΙΣΤΩΣΕΙ", 8: "IRIS"}


def _issuer(config: AgentConfig) -> Issuer:
    address = config.issuer.address
    street = " ".join(part for part in (address.street, address.number) if part)
    town = " ".join(part for part in (address.postal, address.city) if part)
    return Issuer(
        name=config.issuer.name,
        vat=bare_vat(config.issuer.vat),
        address_lines=tuple(line for line in (street, town) if line),
        brand=config.issuer.brand,
        tax_office=config.issuer.tax_office,
        branch=config.issuer.branch,
        activity=config.issuer.activity,
        phone=config.issuer.phone,
    )


def _payment(raw: dict[str, Any], *, amount_key: str) -> Payment:
    method = int(raw.get("PaymentMethodTypeCode", 7))
    card = None
    if raw.get("terminalId"):
        card = CardDetails(
            terminal_id=raw["terminalId"],
            transaction_id=raw.get("transactionId") or "",
            signature=raw.get("providersSignature") or "",
            signature_input=raw.get("posInput") or None,
        )
    return Payment(
        method_code=method,
        label=PAYMENT_LABELS.get(method, PAYMENT_METHODS[method]),
        amount=_dec(raw[amount_key]),
        tip=_dec(raw.get("tipAmount", Decimal("0.00"))),
        card=card,
        reference=raw.get("remarks") or "",
    )


def _line_discount(detail: dict[str, Any]) -> Decimal:
    """The gross a line's allowances took off: net and VAT as the payload carries them."""
    return sum(
        (
            _dec(item["Amount"]) + _dec(item["VatAmount"])
            for item in detail.get("AllowancesCharges", [])
        ),
        Decimal("0.00"),
    )


def _invoice_parts(payload: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    requested = request.get("lines", [])
    lines = []
    for index, detail in enumerate(payload["Details"]):
        quantity = _dec(detail["Quantity"])
        unit_price = (
            Decimal(str(requested[index]["unit_price"]))
            if index < len(requested)
            else (_dec(detail["Total"]) / quantity)
        )
        category = detail["VatCategoryCode"]
        lines.append(
            ReceiptLine(
                description=detail["Descriptions"][0],
                quantity=quantity,
                unit_price=unit_price,
                total=_dec(detail["Total"]),
                vat_percent=VAT_RATES[category],
                vat_category=category,
                unit=MEASUREMENT_UNITS.get(detail.get("MeasurementUnitCode", 1), ""),
                exemption=(
                    EXEMPTION_CAUSE_TEXTS[detail["VatExemptionCategoryCode"]]
                    if "VatExemptionCategoryCode" in detail
                    else None
                ),
                discount=_line_discount(detail),
            )
        )
    summaries = payload["Summaries"]
    return {
        "lines": tuple(lines),
        "vat_analysis": tuple(
            VatBreakdown(
                category=row["VatCategoryCode"],
                percent=_dec(row["Percentage"]),
                net=_dec(row["UnderlyingValue"]),
                vat=_dec(row["VatAmount"]),
                gross=_dec(row["UnderlyingValue"]) + _dec(row["VatAmount"]),
            )
            for row in payload["VatAnalysis"]
        ),
        "totals": Totals(
            net=_dec(summaries["TotalNetAmount"]),
            vat=_dec(summaries["TotalVATAmount"]),
            gross=_dec(summaries["TotalGrossValue"]),
            discount=sum((line.discount for line in lines), Decimal("0.00")),
        ),
        "payments": tuple(
            _payment(raw, amount_key="Amount")
            for raw in payload.get("PaymentDetails", {}).get("PaymentMethods", [])
        ),
        "correlated": [
            *payload.get("CorrelatedInvoices", []),
            *payload.get("multipleConnectedMarks", []),
        ],
    }


def _pos_parts(payload: dict[str, Any]) -> dict[str, Any]:
    total = _dec(payload["totalAmount"])
    return {
        "lines": (),
        "vat_analysis": (),
        "totals": Totals(net=total, vat=Decimal("0.00"), gross=total),
        "payments": tuple(
            _payment({**line, "PaymentMethodTypeCode": 7}, amount_key="amount")
            for line in payload["cardlines"]
        ),
        "correlated": list(payload.get("multipleConnectedMarks", [])),
    }


def _order_slip(payload: dict[str, Any], *, kitchen: bool) -> OrderSlip:
    """An 8.6's table, waiter and kind, from its frozen payload."""
    if payload.get("totalCancelDeliveryOrders"):
        kind = "cancel"
    elif any(detail.get("RecordTypeCode") == RETURN_RECORD_TYPE for detail in payload["Details"]):
        kind = "return"
    else:
        kind = "order"
    return OrderSlip(
        table=str(payload["tableId"]),
        waiter=str(payload["DistributionDetails"].get("salesman", "")),
        kind=kind,
        kitchen=kitchen,
    )


def _cancel_parts(payload: dict[str, Any]) -> dict[str, Any]:
    """A cancellation's one zero line (VAT category 8) is not printed: the cancelled MARKs are."""
    zero = Decimal("0.00")
    return {
        "lines": (),
        "vat_analysis": (),
        "totals": Totals(net=zero, vat=zero, gross=zero),
        "payments": (),
        "correlated": list(payload.get("multipleConnectedMarks", [])),
    }


def printable_receipt(
    config: AgentConfig,
    doc: store.StoredDocument,
    *,
    copy: bool,
    kitchen: bool = False,
    original: store.StoredDocument | None = None,
) -> PrintableReceipt:
    """`kitchen`: an order slip's copy for the kitchen (items only, no prices); `original`:
    the receipt a return names by id, printed by its series and number."""
    assert doc.payload is not None
    payload = loads(doc.payload)
    request = loads(doc.request_json)
    order = _order_slip(payload, kitchen=kitchen) if doc.type_code == ORDER_TYPE else None
    if order is not None and order.kind == "cancel":
        parts = _cancel_parts(payload)
    elif doc.kind == "pos_receipt":
        parts = _pos_parts(payload)
    else:
        parts = _invoice_parts(payload, request)
    counterparty = payload.get("CounterParty")
    customer = (
        Customer(
            vat=bare_vat(counterparty.get("Vat", "")),
            name=counterparty.get("RegisteredName", ""),
        )
        if counterparty
        else None
    )
    return PrintableReceipt(
        issuer=_issuer(config),
        type_code=doc.type_code,
        series=doc.series,
        number=doc.number,
        issued_at=doc.issued_at,
        lines=parts["lines"],
        vat_analysis=parts["vat_analysis"],
        totals=parts["totals"],
        payments=parts["payments"],
        uid=doc.uid,
        mark=str(doc.mark) if doc.mark is not None else None,
        authentication_code=doc.authentication_code,
        qr_url=doc.qr_url,
        delayed_code=doc.delayed_code,
        offline_qr_url=doc.offline_qr_url,
        correlated_marks=tuple(
            str(mark) for mark in parts["correlated"] if original is None or mark != original.mark
        ),
        customer=customer,
        footer=config.provider.footer.lines(),
        copy=copy,
        order=order,
        original=(
            None
            if original is None
            else OriginalDocument(
                type_code=original.type_code,
                series=original.series,
                number=original.number,
                issued_at=original.issued_at,
                mark=str(original.mark) if original.mark is not None else None,
            )
        ),
    )
