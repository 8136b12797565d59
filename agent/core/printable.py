"""A stored document as the plain `PrintableReceipt` the printers package understands.

Amounts come from the frozen provider payload (what the provider and AADE see), the gross unit
prices from the validated request, both read back typed (`agent.fiscal.frozen_payloads`,
`RequestedPrices`); printers never see database rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import offline_store as store
from agent.config import AgentConfig
from agent.fiscal.frozen_payloads import (
    FrozenCardLine,
    FrozenInvoice,
    FrozenPayment,
    FrozenPosReceipt,
)
from agent.fiscal.orders import ORDER_TYPE, RETURN_RECORD_TYPE
from agent.fiscal.receipt_model import RequestedPrices
from agent.fiscal.tax_codes import (
    EXEMPTION_CAUSE_TEXTS,
    MEASUREMENT_UNITS,
    PAYMENT_METHODS,
    VAT_RATES,
)
from agent.fiscal.uid import bare_vat
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

PAYMENT_LABELS = {3: "ΜΕΤΡΗΤΑ", 7: "ΚΑΡΤΑ", 5: "ΕΠΙ ΠΙΣΤΩΣΕΙ", 8: "IRIS"}


@dataclass(frozen=True)
class _Parts:
    """What a document's kind decides of its printout."""

    lines: tuple[ReceiptLine, ...]
    vat_analysis: tuple[VatBreakdown, ...]
    totals: Totals
    payments: tuple[Payment, ...]
    correlated: tuple[int, ...]


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


def _payment(frozen: FrozenPayment | FrozenCardLine) -> Payment:
    card = None
    if frozen.terminal_id:
        card = CardDetails(
            terminal_id=frozen.terminal_id,
            transaction_id=frozen.transaction_id or "",
            signature=frozen.signature or "",
            signature_input=frozen.signature_input or None,
        )
    return Payment(
        method_code=frozen.method,
        label=PAYMENT_LABELS.get(frozen.method, PAYMENT_METHODS[frozen.method]),
        amount=frozen.amount,
        tip=frozen.tip,
        card=card,
        reference=frozen.remarks or "",
    )


def _invoice_parts(payload: FrozenInvoice, requested: list[Decimal]) -> _Parts:
    """`requested`: the unit prices the request named; a line beyond them (none named) prints
    its gross over its quantity."""
    lines = []
    for index, detail in enumerate(payload.details):
        unit_price = (
            requested[index] if index < len(requested) else (detail.gross / detail.quantity)
        )
        lines.append(
            ReceiptLine(
                description=detail.description,
                quantity=detail.quantity,
                unit_price=unit_price,
                total=detail.gross,
                vat_percent=VAT_RATES[detail.vat_category],
                vat_category=detail.vat_category,
                unit=MEASUREMENT_UNITS.get(detail.unit, ""),
                exemption=(
                    EXEMPTION_CAUSE_TEXTS[detail.exemption_cause]
                    if detail.exemption_cause is not None
                    else None
                ),
                discount=detail.discount,
            )
        )
    summaries = payload.summaries
    return _Parts(
        lines=tuple(lines),
        vat_analysis=tuple(
            VatBreakdown(
                category=row.vat_category,
                percent=row.percent,
                net=row.net,
                vat=row.vat,
                gross=row.net + row.vat,
            )
            for row in payload.vat_analysis
        ),
        totals=Totals(
            net=summaries.net,
            vat=summaries.vat,
            gross=summaries.gross,
            discount=sum((line.discount for line in lines), Decimal("0.00")),
        ),
        payments=tuple(_payment(frozen) for frozen in payload.payments),
        correlated=(*payload.correlated_marks, *payload.connected_marks),
    )


def _pos_parts(payload: FrozenPosReceipt) -> _Parts:
    return _Parts(
        lines=(),
        vat_analysis=(),
        totals=Totals(net=payload.total, vat=Decimal("0.00"), gross=payload.total),
        payments=tuple(_payment(line) for line in payload.card_lines),
        correlated=tuple(payload.connected_marks),
    )


def _order_slip(payload: FrozenInvoice, *, kitchen: bool) -> OrderSlip:
    """An 8.6's table, waiter and kind, from its frozen payload."""
    if payload.is_cancellation:
        kind = "cancel"
    elif any(detail.record_type == RETURN_RECORD_TYPE for detail in payload.details):
        kind = "return"
    else:
        kind = "order"
    return OrderSlip(table=payload.table, waiter=payload.waiter, kind=kind, kitchen=kitchen)


def _cancel_parts(payload: FrozenInvoice) -> _Parts:
    """A cancellation's one zero line (VAT category 8) is not printed: the cancelled MARKs are."""
    zero = Decimal("0.00")
    return _Parts(
        lines=(),
        vat_analysis=(),
        totals=Totals(net=zero, vat=zero, gross=zero),
        payments=(),
        correlated=tuple(payload.connected_marks),
    )


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
    order = None
    if doc.kind == "pos_receipt":
        pos = FrozenPosReceipt.of_payload(doc.payload)
        parts, counterparty = _pos_parts(pos), pos.counterparty
    else:
        invoice = FrozenInvoice.of_payload(doc.payload)
        if doc.type_code == ORDER_TYPE:
            order = _order_slip(invoice, kitchen=kitchen)
        if order is not None and order.kind == "cancel":
            parts = _cancel_parts(invoice)
        else:
            requested = RequestedPrices.of_stored_request(doc.request_json).unit_prices()
            parts = _invoice_parts(invoice, requested)
        counterparty = invoice.counterparty
    customer = (
        Customer(vat=bare_vat(counterparty.vat), name=counterparty.name)
        if counterparty is not None
        else None
    )
    return PrintableReceipt(
        issuer=_issuer(config),
        type_code=doc.type_code,
        series=doc.series,
        number=doc.number,
        issued_at=doc.issued_at,
        lines=parts.lines,
        vat_analysis=parts.vat_analysis,
        totals=parts.totals,
        payments=parts.payments,
        uid=doc.uid,
        mark=str(doc.mark) if doc.mark is not None else None,
        authentication_code=doc.authentication_code,
        qr_url=doc.qr_url,
        delayed_code=doc.delayed_code,
        offline_qr_url=doc.offline_qr_url,
        correlated_marks=tuple(
            str(mark) for mark in parts.correlated if original is None or mark != original.mark
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
